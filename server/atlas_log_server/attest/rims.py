"""The server's RIM store: GPU reference integrity manifests fetched from a RIM service, verified once (signing
chain to the CoRIM root and XML signature), kept raw in PostgreSQL with their validity, cached in memory, and
refreshed before their signing chain expires; served back by digest for auditors.

The RIM service is NVIDIA's (``GET <base>/v1/rim/<id>``, answering JSON whose ``rim`` member is the base64 of
the RIM document, with its ``sha256`` beside it) or a stand-in at the same path. A 404 means the service has
no RIM of that id (say, a driver version it does not know): the appraisal then goes on without it, and the
policy decides whether that is acceptable.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import asyncpg
import httpx
from cryptography import x509

from atlas_log.errors import CollateralFetchError, GpuEvidenceError
from atlas_log.gpu import parse_rim, verify_rim
from atlas_log_server.db.rims import RimRepository, StoredRim

_log = logging.getLogger(__name__)

NVIDIA_RIM_SERVICE_URL = "https://rim.attestation.nvidia.com"
_MAX_RIM = 4 << 20  # RIMs are tens of kilobytes
_UNKNOWN_TTL_S = 300  # how long a 404 is believed before the service is asked again


def _validity(rim_document: bytes) -> tuple[int, int]:
    certs = parse_rim(rim_document).certificates
    return (
        int(max(c.not_valid_before_utc for c in certs).timestamp()),
        int(min(c.not_valid_after_utc for c in certs).timestamp()),
    )


def parse_rim_answer(body: bytes, rim_id: str) -> bytes:
    """The RIM document in a RIM service's JSON answer for ``rim_id``; raises :class:`CollateralFetchError` for an
    answer that is not one (another id, a ``sha256`` the document does not have, not base64)."""
    try:
        obj: Any = json.loads(body)
        if not isinstance(obj, dict) or not isinstance(obj.get("rim"), str):
            raise ValueError("no 'rim' member")
        if obj.get("id", rim_id) != rim_id:
            raise ValueError(f"it is the RIM {obj.get('id')!r}")
        document = base64.b64decode(obj["rim"], validate=True)
    except (ValueError, binascii.Error) as exc:
        raise CollateralFetchError(f"the RIM service's answer for {rim_id} is not a RIM: {exc}") from exc
    stated = obj.get("sha256")
    if stated is not None and stated != hashlib.sha256(document).hexdigest():
        raise CollateralFetchError(f"the RIM service's answer for {rim_id} does not have the SHA-256 it states")
    return document


class RimStore:
    """Verified RIMs by id, kept in ``repo`` and cached in memory. ``root`` replaces the pinned NVIDIA CoRIM
    root (the simulated GPU's, in development)."""

    def __init__(
        self,
        repo: RimRepository,
        http: httpx.AsyncClient,
        service_url: str,
        root: x509.Certificate | None,
        refresh_margin_s: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.repo = repo
        self.http = http
        self.service_url = service_url.rstrip("/")
        self.root = root
        self.margin = refresh_margin_s
        self.clock = clock
        self._mem: dict[str, StoredRim] = {}
        self._unknown: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def cached(self, rim_id: str) -> StoredRim | None:
        """The RIM ``rim_id`` if memory holds it valid now (no I/O)."""
        hit = self._mem.get(rim_id)
        now = int(self.clock())
        return hit if hit is not None and hit.not_before <= now < hit.not_after else None

    async def get(self, rim_id: str) -> StoredRim | None:
        """The RIM ``rim_id`` valid now: from memory, else PostgreSQL, else the RIM service (then stored). None
        when the service has no such RIM. Raises :class:`CollateralFetchError` when it cannot be had."""
        now = int(self.clock())
        hit = self._mem.get(rim_id)
        if hit is not None and hit.not_before <= now < hit.not_after:
            return hit
        async with self._locks.setdefault(rim_id, asyncio.Lock()):
            hit = self._mem.get(rim_id)
            if hit is not None and hit.not_before <= now < hit.not_after:
                return hit
            if self._unknown.get(rim_id, 0) > now:
                return None
            stored = await self.repo.valid_at(rim_id, now)
            if stored is not None and now < stored.not_after - self.margin:
                self._mem[rim_id] = stored
                return stored
            try:
                return await self._fetch(rim_id)
            except CollateralFetchError:
                if stored is not None:  # the service is down but what we hold is still valid
                    self._mem[rim_id] = stored
                    return stored
                raise

    async def _fetch(self, rim_id: str) -> StoredRim | None:
        url = f"{self.service_url}/v1/rim/{rim_id}"
        try:
            resp = await self.http.get(url)
        except httpx.HTTPError as exc:
            raise CollateralFetchError(f"GET {url}: {exc}") from exc
        if resp.status_code == 404:
            self._unknown[rim_id] = self.clock() + _UNKNOWN_TTL_S
            return None
        if resp.status_code != 200:
            raise CollateralFetchError(f"GET {url}: {resp.status_code}", resp.status_code)
        if len(resp.content) > _MAX_RIM:
            raise CollateralFetchError(f"GET {url}: the answer is larger than {_MAX_RIM} bytes")
        document = parse_rim_answer(resp.content, rim_id)
        now = int(self.clock())
        try:
            failures = verify_rim(document, at=now, root=self.root)
            not_before, not_after = _validity(document)
        except GpuEvidenceError as exc:
            raise CollateralFetchError(f"the RIM service served {rim_id} malformed: {exc}") from exc
        if failures:
            raise CollateralFetchError(f"the RIM service served {rim_id}, which does not verify: {', '.join(failures)}")
        stored = StoredRim(rim_id, document, not_before, not_after)
        await self.repo.save(stored)
        self._mem[rim_id] = stored
        _log.info("RIM %s fetched; valid until %d", rim_id, not_after)
        return stored

    async def by_digest(self, digest: str) -> StoredRim | None:
        """The stored RIM with this digest (what a composite entry records), if any."""
        return await self.repo.by_digest(digest)

    async def refresh_once(self) -> int:
        """Refetch cached RIMs within the refresh margin of expiry; return how many succeeded."""
        now = int(self.clock())
        done = 0
        for rim_id, cached in list(self._mem.items()):
            if cached.not_after - now > self.margin:
                continue
            try:
                async with self._locks.setdefault(rim_id, asyncio.Lock()):
                    await self._fetch(rim_id)
                done += 1
            except (CollateralFetchError, OSError, asyncpg.PostgresError) as exc:
                _log.warning("RIM refresh for %s failed: %s", rim_id, exc)
        return done
