"""Every SQL statement of confidential entries: sealed disclosures by entry, their erasure, and the record of
every read. The rows are written with their entry, by the sequencer (:meth:`Transaction.insert_disclosures`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import asyncpg

from atlas_log_server.vault import Sealed


@dataclass(frozen=True, slots=True)
class StoredDisclosures:
    """An entry's disclosures as stored: its ID, submitting tenant, and the sealed value, or when, by whom
    and why they were erased."""

    index: int
    entry_id: bytes
    tenant: str | None
    sealed: Sealed | None
    erased_at: dt.datetime | None
    erased_by: str | None
    erase_reason: str | None


class DisclosureRepository:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def get(self, index: int) -> StoredDisclosures | None:
        row = await self.pool.fetchrow(
            "SELECT d.*, e.entry_id FROM entry_disclosures d JOIN entries e ON e.idx = d.idx WHERE d.idx = $1", index
        )
        if row is None:
            return None
        sealed = None if row["wrapped_key"] is None else Sealed(bytes(row["wrapped_key"]), bytes(row["ciphertext"]))
        return StoredDisclosures(
            index,
            bytes(row["entry_id"]),
            row["tenant"],
            sealed,
            row["erased_at"],
            row["erased_by"],
            row["erase_reason"],
        )

    async def erase(self, index: int, by: str, reason: str) -> bool:
        """Drop the entry's wrapped key and ciphertext; False when there is nothing left to erase."""
        done = await self.pool.execute(
            "UPDATE entry_disclosures SET wrapped_key = NULL, ciphertext = NULL, erased_at = now(), "
            "erased_by = $2, erase_reason = $3 WHERE idx = $1 AND erased_at IS NULL",
            index,
            by,
            reason,
        )
        return bool(done.endswith(" 1"))

    async def erase_again(self, entry_ids: frozenset[str]) -> int:
        """Erase, again, the rows of these entries (hex IDs) that still hold a key: a database restored from a
        backup taken before their erasure. Returns how many."""
        if not entry_ids:
            return 0
        done = await self.pool.execute(
            "UPDATE entry_disclosures d SET wrapped_key = NULL, ciphertext = NULL, "
            "erased_at = coalesce(d.erased_at, now()), erased_by = coalesce(d.erased_by, 'restore'), "
            "erase_reason = coalesce(d.erase_reason, 'erased before the backup this database was restored from') "
            "FROM entries e WHERE e.idx = d.idx AND d.wrapped_key IS NOT NULL AND encode(e.entry_id, 'hex') = ANY($1)",
            sorted(entry_ids),
        )
        return int(done.split()[-1])

    async def erased(self, indices: list[int]) -> dict[int, dt.datetime]:
        """When each of these entries' disclosures were erased (entries not erased are absent)."""
        rows = await self.pool.fetch(
            "SELECT idx, erased_at FROM entry_disclosures WHERE idx = ANY($1::bigint[]) AND erased_at IS NOT NULL",
            indices,
        )
        return {r["idx"]: r["erased_at"] for r in rows}

    async def names_any(self, index: int, digests: list[str]) -> bool:
        """Whether entry ``index`` names one of these index keys (``alg:hex``, blinded ones too)."""
        found = await self.pool.fetchval(
            "SELECT 1 FROM entry_artifacts WHERE idx = $1 AND digest = ANY($2::text[]) LIMIT 1", index, digests
        )
        return found is not None

    async def record(self, index: int | None, tenant: str | None, reader: str, action: str) -> None:
        await self.pool.execute(
            "INSERT INTO disclosure_reads (idx, tenant, reader, action) VALUES ($1, $2, $3, $4)",
            index,
            tenant,
            reader,
            action,
        )

    async def reads(self, tenant: str, limit: int) -> list[dict[str, Any]]:
        """The newest reads and erasures of this tenant's disclosures."""
        rows = await self.pool.fetch(
            "SELECT at, idx, reader, action FROM disclosure_reads WHERE tenant = $1 ORDER BY at DESC, id DESC LIMIT $2",
            tenant,
            limit,
        )
        return [
            {"at": r["at"].isoformat(), "logIndex": r["idx"], "reader": r["reader"], "action": r["action"]}
            for r in rows
        ]
