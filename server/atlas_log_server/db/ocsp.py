"""The OCSP aggregate's SQL: raw OCSP responses for GPU device and RIM certificates, with the window in which
each is current, by certificate and by digest."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import asyncpg


@dataclass(frozen=True, slots=True)
class StoredOcsp:
    """An OCSP response as the responder served it for the certificate ``certificate`` (``<SHA-256 of the
    issuer's SubjectPublicKeyInfo, hex>:<serial, hex>``), current from ``this_update`` to ``next_update``
    (Unix seconds)."""

    certificate: str
    response: bytes
    this_update: int
    next_update: int

    @property
    def digest(self) -> str:
        """What a composite entry records of the response: SHA-256 of its DER, hex."""
        return hashlib.sha256(self.response).hexdigest()


class OcspRepository:
    """Stored OCSP responses. A response is stored once (by its digest) and never changes."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def save(self, stored: StoredOcsp) -> None:
        await self.pool.execute(
            "INSERT INTO gpu_ocsp (digest, certificate, response, this_update, next_update) "
            "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (digest) DO NOTHING",
            stored.digest,
            stored.certificate,
            stored.response,
            stored.this_update,
            stored.next_update,
        )

    async def current_at(self, certificate: str, now: int) -> StoredOcsp | None:
        """The newest stored response for ``certificate`` current at ``now``, if any."""
        row = await self.pool.fetchrow(
            "SELECT * FROM gpu_ocsp WHERE certificate = $1 AND this_update <= $2 AND next_update >= $2 "
            "ORDER BY this_update DESC LIMIT 1",
            certificate,
            now,
        )
        return None if row is None else _stored(row)

    async def by_digest(self, digest: str) -> StoredOcsp | None:
        row = await self.pool.fetchrow("SELECT * FROM gpu_ocsp WHERE digest = $1", digest)
        return None if row is None else _stored(row)


def _stored(row: asyncpg.Record) -> StoredOcsp:
    return StoredOcsp(row["certificate"], bytes(row["response"]), row["this_update"], row["next_update"])
