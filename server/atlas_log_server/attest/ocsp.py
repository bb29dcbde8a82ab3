"""The server's OCSP store: responses for GPU device and RIM signing certificates, asked of an OCSP service
(NVIDIA's, or a stand-in), judged once (:func:`atlas_log.gpu.ocsp.check_revocation`: signed by the issuer or a
responder it authorised, current), kept raw in PostgreSQL with the window in which each is current, cached in
memory and asked again before it runs out; served back by digest for auditors.

A response is asked for one certificate at a time, by HTTP POST of a DER ``OCSPRequest`` (RFC 6960 Appendix
A.1) whose CertID hashes with SHA-384, without a nonce, so that one answer serves every entry while it is
current (RFC 5019 §2.1). An answer saying ``revoked`` is stored like any other: it is what the appraisal must
hear.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
from collections.abc import Callable

import asyncpg
import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from atlas_log.errors import CollateralFetchError, GpuEvidenceError
from atlas_log.gpu.ocsp import check_revocation
from atlas_log.memo import IdentityMemo
from atlas_log_server.db.ocsp import OcspRepository, StoredOcsp

_log = logging.getLogger(__name__)

NVIDIA_OCSP_URL = "https://ocsp.ndis.nvidia.com"
_MAX_RESPONSE = 64 * 1024
_FAILED_TTL_S = 60  # how long a service that could not answer is not asked again for that certificate


_KEYS: IdentityMemo[str] = IdentityMemo(4096)  # asked for every certificate of every GPU entry


def certificate_key(cert: x509.Certificate, issuer: x509.Certificate) -> str:
    """How the store names a certificate: SHA-256 of its issuer's SubjectPublicKeyInfo and its serial, hex."""

    def make() -> str:
        spki = issuer.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return f"{hashlib.sha256(spki).hexdigest()}:{cert.serial_number:x}"

    return _KEYS.remember((cert, issuer), make)


def _echoed_nonce(der: bytes) -> bytes | None:
    """The nonce a response echoes (RFC 8954), or None when it has none or does not parse (then its judgement
    says why)."""
    try:
        response = ocsp.load_der_ocsp_response(der)
        if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
            return None
        return response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
    except (ValueError, x509.ExtensionNotFound):
        return None


class OcspStore:
    """Current OCSP responses by certificate, kept in ``repo`` and cached in memory. A cached response is asked
    again once less than ``refresh_margin_s`` of it remains (or half its window, for short-lived ones)."""

    def __init__(
        self,
        repo: OcspRepository,
        http: httpx.AsyncClient,
        service_url: str,
        refresh_margin_s: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.repo = repo
        self.http = http
        self.service_url = service_url
        self.margin = refresh_margin_s
        self.clock = clock
        self._mem: dict[str, tuple[StoredOcsp, x509.Certificate, x509.Certificate]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._failed: dict[str, float] = {}

    def _fresh(self, stored: StoredOcsp, now: int) -> bool:
        margin = min(self.margin, (stored.next_update - stored.this_update) // 2)
        return stored.this_update <= now <= stored.next_update - margin

    def cached(self, cert: x509.Certificate, issuer: x509.Certificate) -> StoredOcsp | None:
        """The response for ``cert`` if memory holds one current now (no I/O)."""
        hit = self._mem.get(certificate_key(cert, issuer))
        now = int(self.clock())
        return hit[0] if hit is not None and hit[0].this_update <= now <= hit[0].next_update else None

    def recently_failed(self, cert: x509.Certificate, issuer: x509.Certificate) -> bool:
        """Whether asking for ``cert`` failed within the last minute (it is not asked again until then)."""
        return self._failed.get(certificate_key(cert, issuer), 0) > self.clock()

    async def get(self, cert: x509.Certificate, issuer: x509.Certificate) -> StoredOcsp:
        """A current response for ``cert`` (issued by ``issuer``): from memory, else PostgreSQL, else the OCSP
        service (then stored). Raises :class:`CollateralFetchError` when none can be had."""
        key = certificate_key(cert, issuer)
        now = int(self.clock())
        hit = self._mem.get(key)
        if hit is not None and self._fresh(hit[0], now):
            return hit[0]
        async with self._locks.setdefault(key, asyncio.Lock()):
            hit = self._mem.get(key)
            if hit is not None and self._fresh(hit[0], now):
                return hit[0]
            stored = await self.repo.current_at(key, now)
            if stored is not None and self._fresh(stored, now):
                self._mem[key] = (stored, cert, issuer)
                return stored
            held = stored or (hit[0] if hit is not None else None)
            current = held if held is not None and held.this_update <= now <= held.next_update else None
            if self._failed.get(key, 0) > now:  # the service failed a moment ago: not asked again yet
                if current is not None:
                    return current
                raise CollateralFetchError(f"the OCSP service failed for {key} less than {_FAILED_TTL_S} s ago")
            try:
                return await self._fetch(key, cert, issuer)
            except CollateralFetchError:
                self._failed[key] = self.clock() + _FAILED_TTL_S
                if current is not None:
                    self._mem[key] = (current, cert, issuer)  # the service is down, but what we hold is current
                    return current
                raise

    async def _fetch(self, key: str, cert: x509.Certificate, issuer: x509.Certificate) -> StoredOcsp:
        # A fresh nonce (RFC 8954): a response echoing another is an old one replayed to the log and refused. A
        # responder may answer from a cache without one (the response is then judged by its window alone).
        nonce = os.urandom(32)
        request = (
            ocsp.OCSPRequestBuilder()
            .add_certificate(cert, issuer, hashes.SHA384())
            .add_extension(x509.OCSPNonce(nonce), critical=False)
            .build()
        )
        body = request.public_bytes(serialization.Encoding.DER)
        what = f"OCSP for {cert.subject.rfc4514_string()} (serial {cert.serial_number:x})"
        try:
            resp = await self.http.post(
                self.service_url, content=body, headers={"Content-Type": "application/ocsp-request"}
            )
        except httpx.HTTPError as exc:
            raise CollateralFetchError(f"{what}: POST {self.service_url}: {exc}") from exc
        if resp.status_code != 200:
            raise CollateralFetchError(f"{what}: POST {self.service_url}: {resp.status_code}", resp.status_code)
        if len(resp.content) > _MAX_RESPONSE:
            raise CollateralFetchError(f"{what}: the answer is larger than {_MAX_RESPONSE} bytes")
        echoed = _echoed_nonce(resp.content)
        if echoed is not None and echoed != nonce:
            raise CollateralFetchError(f"{what}: the answer echoes another request's nonce (a replayed response)")
        now = int(self.clock())
        try:
            [check] = check_revocation([cert, issuer], [resp.content], at=now)
        except GpuEvidenceError as exc:
            raise CollateralFetchError(f"{what}: the service's answer is not a usable response: {exc.message}") from exc
        if check.status in ("missing", "invalid") or check.this_update is None:
            raise CollateralFetchError(
                f"{what}: the service's answer does not speak for it" + (f" ({check.problem})" if check.problem else "")
            )
        # A response without nextUpdate is current for a day after thisUpdate (atlas_log.gpu.ocsp).
        next_update = check.next_update if check.next_update is not None else check.this_update + 86_400
        stored = StoredOcsp(key, resp.content, check.this_update, next_update)
        await self.repo.save(stored)
        self._mem[key] = (stored, cert, issuer)
        self._failed.pop(key, None)
        _log.info("%s: %s, current until %d", what, check.status, next_update)
        return stored

    async def by_digest(self, digest: str) -> StoredOcsp | None:
        """The stored response with this digest (what a composite entry records), if any."""
        return await self.repo.by_digest(digest)

    async def refresh_once(self) -> int:
        """Ask again for cached responses near their end; return how many were renewed."""
        now = int(self.clock())
        done = 0
        for key, (stored, cert, issuer) in list(self._mem.items()):
            if self._fresh(stored, now):
                continue
            try:
                async with self._locks.setdefault(key, asyncio.Lock()):
                    await self._fetch(key, cert, issuer)
                done += 1
            except (CollateralFetchError, OSError, asyncpg.PostgresError) as exc:
                _log.warning("OCSP refresh for %s failed: %s", key, exc)
        return done
