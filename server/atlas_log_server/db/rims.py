"""The RIM aggregate's SQL: raw GPU reference integrity manifests with their validity, by id and by digest."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import asyncpg


@dataclass(frozen=True, slots=True)
class StoredRim:
    """A RIM document as the RIM service served it under ``rim_id``, and the window in which its signing chain
    is valid (Unix seconds)."""

    rim_id: str
    document: bytes
    not_before: int
    not_after: int

    @property
    def digest(self) -> str:
        """What a composite entry records of the RIM it was appraised with: SHA-256 of the document, hex."""
        return hashlib.sha256(self.document).hexdigest()


class RimRepository:
    """Stored RIMs. A document is stored once (by its digest) and never changes."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def save(self, rim: StoredRim) -> None:
        await self.pool.execute(
            "INSERT INTO gpu_rims (digest, rim_id, document, not_before, not_after) VALUES ($1, $2, $3, $4, $5) "
            "ON CONFLICT (digest) DO NOTHING",
            rim.digest,
            rim.rim_id,
            rim.document,
            rim.not_before,
            rim.not_after,
        )

    async def valid_at(self, rim_id: str, now: int) -> StoredRim | None:
        """The stored RIM of this id valid at ``now`` that stays valid longest, if any."""
        row = await self.pool.fetchrow(
            "SELECT * FROM gpu_rims WHERE rim_id = $1 AND not_before <= $2 AND not_after > $2 "
            "ORDER BY not_after DESC LIMIT 1",
            rim_id,
            now,
        )
        return None if row is None else _rim(row)

    async def by_digest(self, digest: str) -> StoredRim | None:
        row = await self.pool.fetchrow("SELECT * FROM gpu_rims WHERE digest = $1", digest)
        return None if row is None else _rim(row)


def _rim(row: asyncpg.Record) -> StoredRim:
    return StoredRim(row["rim_id"], bytes(row["document"]), row["not_before"], row["not_after"])
