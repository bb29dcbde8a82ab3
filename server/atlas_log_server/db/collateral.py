"""The collateral aggregate's SQL: raw PCS collateral sets with their validity, by platform and by digest."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from atlas_log.tdx.collateral import COLLATERAL_PARTS, Collateral


@dataclass(frozen=True, slots=True)
class StoredCollateral:
    """A collateral set and the window in which every part of it is valid (Unix seconds)."""

    collateral: Collateral
    not_before: int
    not_after: int


def _collateral(row: asyncpg.Record) -> Collateral:
    return Collateral(*(bytes(row[p]) for p in COLLATERAL_PARTS))


class CollateralRepository:
    """Stored collateral sets. A set is stored once (by its digest) and never changes."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def save(self, fmspc: str, ca: str, stored: StoredCollateral) -> None:
        """Store ``stored`` as the collateral of platform ``fmspc`` under PCK CA ``ca`` (kept if present)."""
        collateral = stored.collateral
        await self.pool.execute(
            "INSERT INTO pcs_collateral (digest, fmspc, ca, "
            + ", ".join(COLLATERAL_PARTS)
            + ", not_before, not_after) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (digest) DO NOTHING",
            collateral.digest,
            fmspc,
            ca,
            *(getattr(collateral, p) for p in COLLATERAL_PARTS),
            stored.not_before,
            stored.not_after,
        )

    async def valid_at(self, fmspc: str, ca: str, now: int) -> StoredCollateral | None:
        """The stored set of this platform valid at ``now`` that stays valid longest, if any."""
        row = await self.pool.fetchrow(
            "SELECT * FROM pcs_collateral WHERE fmspc = $1 AND ca = $2 AND not_before <= $3 AND not_after > $3 "
            "ORDER BY not_after DESC LIMIT 1",
            fmspc,
            ca,
            now,
        )
        return None if row is None else StoredCollateral(_collateral(row), row["not_before"], row["not_after"])

    async def by_digest(self, digest: str) -> Collateral | None:
        """The set whose digest (what entries record as ``tee.collateral.set``) is ``digest``, if stored."""
        row = await self.pool.fetchrow("SELECT * FROM pcs_collateral WHERE digest = $1", digest)
        return None if row is None else _collateral(row)
