"""A local stand-in for Intel PCS: serves PCS-replay folders and simulated platforms at the PCS v4 paths.

Each source is mounted under its own prefix (``""`` for a single one), because QE identity and the CRLs
are not keyed by platform: ``<prefix>/tdx/certification/v4/tcb?fmspc=``, ``<prefix>/tdx/certification/v4/
qe/identity``, ``<prefix>/sgx/certification/v4/pckcrl?ca=&encoding=der`` and
``<prefix>/sgx/certification/v4/rootcacrl`` (DER), issuer chains URL-encoded in the headers as PCS does.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from atlas_log.tdx.collateral import Collateral, collateral_from_dir

if TYPE_CHECKING:
    from atlas_log.testing.simulate import SimulatedPlatform

Source = Callable[[], Collateral]


def folder_source(path: Path) -> Source:
    collateral = collateral_from_dir(path)
    return lambda: collateral


def simulated_source(platform: SimulatedPlatform, refresh_s: int = 86_400) -> Source:
    """Fresh collateral for a simulated platform, reissued every ``refresh_s`` seconds (as PCS reissues)."""
    state: dict[int, Collateral] = {}

    def get() -> Collateral:
        epoch = int(time.time()) // refresh_s
        if epoch not in state:
            state.clear()
            state[epoch] = platform.collateral(epoch * refresh_s - 60)
        return state[epoch]

    return get


def _chain_header(pem: bytes) -> str:
    return quote(pem.decode(), safe="")


def _fmspc(c: Collateral) -> str:
    return str(json.loads(c.tcb_info)["tcbInfo"]["fmspc"]).upper()


def create_standin_app(sources: Mapping[str, Source]) -> Starlette:
    def handler(respond: Callable[[Request, Collateral], Response]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            prefix = request.path_params.get("prefix", "")
            if prefix not in sources:
                return Response(status_code=404)
            return respond(request, sources[prefix]())

        return endpoint

    def tcb(request: Request, c: Collateral) -> Response:
        if request.query_params.get("fmspc", "").upper() != _fmspc(c):
            return Response(status_code=404)
        headers = {"TCB-Info-Issuer-Chain": _chain_header(c.tcb_info_issuer_chain)}
        return Response(c.tcb_info, media_type="application/json", headers=headers)

    def qe(request: Request, c: Collateral) -> Response:
        headers = {"SGX-Enclave-Identity-Issuer-Chain": _chain_header(c.qe_identity_issuer_chain)}
        return Response(c.qe_identity, media_type="application/json", headers=headers)

    def pckcrl(request: Request, c: Collateral) -> Response:
        if request.query_params.get("ca") not in ("platform", "processor"):
            return Response(status_code=400)
        headers = {"SGX-PCK-CRL-Issuer-Chain": _chain_header(c.pck_crl_issuer_chain)}
        return Response(c.pck_crl, media_type="application/pkix-crl", headers=headers)

    def rootcrl(request: Request, c: Collateral) -> Response:
        return Response(c.root_ca_crl, media_type="application/pkix-crl")

    routes = []
    for base in ("", "/{prefix}"):
        routes += [
            Route(base + "/tdx/certification/v4/tcb", handler(tcb)),
            Route(base + "/tdx/certification/v4/qe/identity", handler(qe)),
            Route(base + "/sgx/certification/v4/pckcrl", handler(pckcrl)),
            Route(base + "/sgx/certification/v4/rootcacrl", handler(rootcrl)),
        ]
    return Starlette(routes=routes)
