"""An httpx client for Intel PCS API v4 (or a PCCS, or a local stand-in): the collateral a TDX quote needs.

Issuer chains arrive URL-encoded in response headers; bodies are kept byte-exact (the signatures cover
them). 404, 429 (with ``Retry-After``), 503 and transport failures raise
:class:`~atlas_log.errors.CollateralFetchError`.
"""

from __future__ import annotations

import asyncio
from urllib.parse import unquote

import httpx

from atlas_log._encoding import hexdecode
from atlas_log.errors import CollateralFetchError, FormatError
from atlas_log.tdx.collateral import Collateral

__all__ = ["INTEL_PCS_URL", "INTEL_ROOT_CRL_URL", "PcsClient"]

INTEL_PCS_URL = "https://api.trustedservices.intel.com"
INTEL_ROOT_CRL_URL = "https://certificates.trustedservices.intel.com/IntelSGXRootCA.der"


def _retry_after(resp: httpx.Response) -> float | None:
    value = resp.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _chain(resp: httpx.Response, *names: str) -> bytes:
    for name in names:
        value = resp.headers.get(name)
        if value:
            return unquote(value).encode()
    raise CollateralFetchError(f"{resp.request.url.path}: response lacks the {names[0]} header", resp.status_code)


def _crl_bytes(body: bytes) -> bytes:
    """DER as served by PCS; a PCCS serves the root CA CRL as a hex string."""
    text = body.strip()
    if text and all(c in b"0123456789abcdefABCDEF" for c in text):
        try:
            return hexdecode(text.decode(), "root CA CRL", any_case=True)
        except FormatError:
            pass
    return body


class PcsClient:
    """Fetches TDX collateral. ``base_url`` is Intel PCS by default; ``root_crl_url`` likewise."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str = INTEL_PCS_URL,
        root_crl_url: str = INTEL_ROOT_CRL_URL,
        retries: int = 2,
    ) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.root_crl_url = root_crl_url
        self.retries = retries

    async def _get(self, url: str, params: dict[str, str] | None = None) -> httpx.Response:
        for attempt in range(self.retries + 1):
            try:
                resp = await self.http.get(url, params=params)
            except httpx.HTTPError as exc:
                if attempt == self.retries:
                    raise CollateralFetchError(f"GET {url}: {exc}") from exc
                await asyncio.sleep(0.2 * (attempt + 1))
                continue
            if resp.status_code == 200:
                return resp
            retry = _retry_after(resp)
            if resp.status_code in (429, 503) and attempt < self.retries and (retry or 0) <= 5:
                await asyncio.sleep(retry if retry is not None else 0.2 * (attempt + 1))
                continue
            what = {404: "not found", 410: "no longer available", 429: "rate limited", 503: "unavailable"}
            raise CollateralFetchError(
                f"GET {url}: {resp.status_code} {what.get(resp.status_code, 'error')}", resp.status_code, retry
            )
        raise CollateralFetchError(f"GET {url}: no answer")  # unreachable: the loop returns or raises

    async def tcb_info(self, fmspc: str) -> tuple[bytes, bytes]:
        r = await self._get(f"{self.base_url}/tdx/certification/v4/tcb", {"fmspc": fmspc.upper()})
        return r.content, _chain(r, "TCB-Info-Issuer-Chain", "SGX-TCB-Info-Issuer-Chain")

    async def qe_identity(self) -> tuple[bytes, bytes]:
        r = await self._get(f"{self.base_url}/tdx/certification/v4/qe/identity")
        return r.content, _chain(r, "SGX-Enclave-Identity-Issuer-Chain")

    async def pck_crl(self, ca: str) -> tuple[bytes, bytes]:
        if ca not in ("platform", "processor"):
            raise ValueError("ca is 'platform' or 'processor'")
        r = await self._get(f"{self.base_url}/sgx/certification/v4/pckcrl", {"ca": ca, "encoding": "der"})
        return r.content, _chain(r, "SGX-PCK-CRL-Issuer-Chain")

    async def root_ca_crl(self) -> bytes:
        return _crl_bytes((await self._get(self.root_crl_url)).content)

    async def collateral(self, fmspc: str, ca: str = "platform") -> Collateral:
        """All collateral for a platform, fetched concurrently."""
        (tcb, tcb_chain), (qe, qe_chain), (crl, crl_chain), root_crl = await asyncio.gather(
            self.tcb_info(fmspc), self.qe_identity(), self.pck_crl(ca), self.root_ca_crl()
        )
        return Collateral(tcb, tcb_chain, qe, qe_chain, crl, crl_chain, root_crl)
