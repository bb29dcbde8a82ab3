"""A local stand-in for NVIDIA's RIM service: serves RIM documents (from simulated GPUs or a folder) at the
service's paths, in its JSON shape.

The real service (``https://rim.attestation.nvidia.com``) answers

* ``GET /v1/rim/{id}`` with ``{"id", "rim", "sha256", "last_updated", "rim_format", "request_id"}``, where
  ``rim`` is the RIM document in standard base64, ``rim_format`` is ``"TCG"`` for the SWID-tag RIMs of GPUs
  (``"CORIM"`` for ConnectX-7 only), ``sha256`` 64 hex characters, ``last_updated`` an ISO 8601 time
  without a zone (``2025-03-14T15:09:03.011000``) and ``request_id`` a UUID;
* ``GET /v1/rim/ids`` with ``{"ids": [...], "request_id", "last_updated"}``.

Sources: NVIDIA's API reference ("Get RIM by ID", https://docs.api.nvidia.com/attestation/reference/getrim)
and RIM guide (https://docs.nvidia.com/attestation/quick-start-guide/latest/rim_guide.html, which fetches
``/v1/rim/NV_GPU_DRIVER_GH100_535.104.05`` and decodes ``.rim`` from base64); the IETF RATS wiki page
"NVIDIA endorsement distribution API", which shows a whole answer of each endpoint
(https://wiki.ietf.org/group/rats/referencevalues/nvidia-endorsement-distribution-api); NVIDIA's local GPU verifier
(``verifier/cc_admin_utils.py``, ``fetch_rim_file_from_url``: base URL ``…/v1/rim/`` + id, base64 of
``["rim"]``; read in the copy at Azure/az-cgpu-onboarding ``src/local_gpu_verifier``).

What is not documented, and what the stand-in does instead: ``sha256`` is taken to be the SHA-256 of the
decoded RIM; an unknown id gets 404 with an RFC 9457 problem (the real service's error body is not
published); the real service may ask for an ``Authorization: Bearer`` API key, which the stand-in ignores.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

if TYPE_CHECKING:
    from atlas_log.testing.simulated_gpu import SimulatedGpu

__all__ = ["RIM_PATH", "create_rim_standin_app", "folder_rims", "simulated_rims"]

RIM_PATH = "/v1/rim"
"""Where the service serves RIMs: ``{RIM_PATH}/{id}`` and ``{RIM_PATH}/ids``."""
_RIM_SUFFIXES = (".xml", ".swidtag")
_PROBLEM_JSON = "application/problem+json"


def simulated_rims(gpus: Iterable[SimulatedGpu]) -> dict[str, bytes]:
    """The driver and VBIOS RIMs of these simulated GPUs by their RIM ids (signed once, here). GPUs of one
    firmware under one CoRIM root (siblings) share their RIMs; two GPUs under different roots that claim one
    id raise :class:`ValueError`, since only one of them could be served."""
    out: dict[str, bytes] = {}
    roots: dict[str, x509.Certificate] = {}
    for gpu in gpus:
        for rim_id, document in gpu.rims().items():
            if rim_id in roots and roots[rim_id] != gpu.rim_root:
                raise ValueError(f"two simulated GPUs with different CoRIM roots claim the RIM id {rim_id}")
            roots[rim_id] = gpu.rim_root
            out.setdefault(rim_id, document)
    return out


def folder_rims(folder: Path) -> dict[str, bytes]:
    """The RIM files (``*.xml``, ``*.swidtag``) of ``folder`` by file name without suffix, which is how
    NVIDIA names RIM files after their ids (``NV_GPU_DRIVER_GH100_550.144.03.xml``). Served as they are,
    byte for byte: the stand-in judges nothing. Raises :class:`OSError` for an unreadable folder."""
    return {p.stem: p.read_bytes() for p in sorted(folder.iterdir()) if p.suffix in _RIM_SUFFIXES and p.is_file()}


def _timestamp(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).replace(tzinfo=None).isoformat(timespec="microseconds")


def create_rim_standin_app(rims: Mapping[str, bytes], *, last_updated: dt.datetime | None = None) -> Starlette:
    """A Starlette app serving ``rims`` (id → RIM document) at ``/v1/rim/{id}``, their ids at
    ``/v1/rim/ids``; ``last_updated`` (default: now) is what every answer states as the time they changed."""
    served = dict(rims)
    updated = _timestamp(last_updated or dt.datetime.now(dt.UTC))

    async def ids(request: Request) -> Response:
        return JSONResponse({"ids": sorted(served), "request_id": str(uuid.uuid4()), "last_updated": updated})

    async def rim(request: Request) -> Response:
        rim_id = request.path_params["rim_id"]
        document = served.get(rim_id)
        if document is None:
            problem = {
                "type": "about:blank",
                "title": "Not Found",
                "status": 404,
                "detail": f"no RIM with id {rim_id!r}",
            }
            return JSONResponse(problem, status_code=404, media_type=_PROBLEM_JSON)
        return JSONResponse(
            {
                "id": rim_id,
                "rim": base64.b64encode(document).decode("ascii"),
                "sha256": hashlib.sha256(document).hexdigest(),
                "last_updated": updated,
                "rim_format": "TCG",
                "request_id": str(uuid.uuid4()),
            }
        )

    # The literal "ids" route first: a RIM cannot be called "ids".
    return Starlette(routes=[Route(f"{RIM_PATH}/ids", ids), Route(f"{RIM_PATH}/{{rim_id}}", rim)])
