"""Every SQL statement of the verifiable map (:mod:`atlas_log.vmap`): its nodes by version, its versions and
their commitments. Callers get typed values; nothing else here knows SQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg

from atlas_log.vmap import MapKey, MapLeaf, MapRoot, MapValue, NodeWrite, Position, StoredNode, position_bytes

# One advisory lock (any 64-bit number of our own) serialises map builders across the server's processes.
_BUILDER_LOCK = 0x61746C61736D6170  # "atlasmap"


@dataclass(frozen=True, slots=True)
class MapVersion:
    """The map of the log's first ``tree_size`` leaves: its root, its number of keys, and the index of the log
    entry that commits it (None until that entry is sequenced)."""

    tree_size: int
    root: MapRoot
    keys: int
    commitment_index: int | None


def _version(row: asyncpg.Record) -> MapVersion:
    return MapVersion(row["tree_size"], MapRoot(bytes(row["root"])), row["keys"], row["commitment_idx"])


class MapSnapshot:
    """Reads of the map inside one read-only, repeatable-read transaction: a version and its nodes as they
    were together, whatever a builder writes or prunes meanwhile."""

    def __init__(self, conn: asyncpg.pool.PoolConnectionProxy) -> None:
        self._conn = conn

    async def committed(self, below: int) -> MapVersion | None:
        """The newest version whose commitment entry is in the first ``below`` leaves of the log."""
        row = await self._conn.fetchrow(
            "SELECT * FROM map_versions WHERE commitment_idx IS NOT NULL AND commitment_idx < $1 "
            "ORDER BY tree_size DESC LIMIT 1",
            below,
        )
        return None if row is None else _version(row)

    async def nodes(self, positions: Sequence[Position], version: int) -> dict[Position, StoredNode]:
        """What stands at each position in the map of ``version`` (absent: an empty subtree)."""
        if not positions:
            return {}
        by_bytes = {(d, position_bytes(d, p)): (d, p) for d, p in positions}
        # A lateral probe per position keeps one index range scan each, whatever plan the statement caches.
        rows = await self._conn.fetch(
            "SELECT p.depth, p.prefix, n.hash, n.leaf_key, n.newest, n.count "
            "FROM unnest($1::smallint[], $2::bytea[]) AS p(depth, prefix) CROSS JOIN LATERAL ("
            "  SELECT m.hash, m.leaf_key, m.newest, m.count FROM map_nodes m "
            "  WHERE m.depth = p.depth AND m.prefix = p.prefix AND m.version <= $3 "
            "  ORDER BY m.version DESC LIMIT 1) AS n",
            [d for d, _ in by_bytes],
            [b for _, b in by_bytes],
            version,
        )
        out: dict[Position, StoredNode] = {}
        for r in rows:
            pos = by_bytes[(r["depth"], bytes(r["prefix"]))]
            if r["leaf_key"] is None:
                out[pos] = bytes(r["hash"])
            else:
                out[pos] = MapLeaf(MapKey(bytes(r["leaf_key"])), MapValue(r["newest"], r["count"]))
        return out


class MapRepository:
    """The map's storage, over the log's asyncpg pool."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @asynccontextmanager
    async def builder_lock(self) -> AsyncIterator[bool]:
        """Hold the builders' lock while the block runs; yields False (and holds nothing) when another process
        holds it."""
        async with self.pool.acquire() as conn:
            held = await conn.fetchval("SELECT pg_try_advisory_lock($1)", _BUILDER_LOCK)
            try:
                yield bool(held)
            finally:
                if held:
                    await conn.execute("SELECT pg_advisory_unlock($1)", _BUILDER_LOCK)

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[MapSnapshot]:
        async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            yield MapSnapshot(conn)

    async def latest(self) -> MapVersion | None:
        """The newest version built (committed or not)."""
        row = await self.pool.fetchrow("SELECT * FROM map_versions ORDER BY tree_size DESC LIMIT 1")
        return None if row is None else _version(row)

    async def version(self, tree_size: int) -> MapVersion | None:
        row = await self.pool.fetchrow("SELECT * FROM map_versions WHERE tree_size = $1", tree_size)
        return None if row is None else _version(row)

    async def write_version(self, tree_size: int, root: bytes, keys: int, writes: Sequence[NodeWrite]) -> None:
        """Store a new version (its changed positions and its row) in one transaction. For each position it
        writes, rows older than the one readers of the previous version use are dropped: a position keeps at
        most the row of each of the last two versions that changed it."""
        depths = [w.depth for w in writes]
        prefixes = [position_bytes(w.depth, w.prefix) for w in writes]
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "DELETE FROM map_nodes m USING unnest($1::smallint[], $2::bytea[]) AS p(depth, prefix) "
                "WHERE m.depth = p.depth AND m.prefix = p.prefix AND m.version < ("
                "  SELECT max(x.version) FROM map_nodes x WHERE x.depth = p.depth AND x.prefix = p.prefix)",
                depths,
                prefixes,
            )
            await conn.copy_records_to_table(
                "map_nodes",
                records=[
                    (
                        w.depth,
                        prefix,
                        tree_size,
                        w.hash,
                        None if w.leaf is None else w.leaf.key,
                        None if w.leaf is None else w.leaf.value.newest,
                        None if w.leaf is None else w.leaf.value.count,
                    )
                    for w, prefix in zip(writes, prefixes, strict=True)
                ],
                columns=["depth", "prefix", "version", "hash", "leaf_key", "newest", "count"],
            )
            await conn.execute(
                "INSERT INTO map_versions (tree_size, root, keys) VALUES ($1, $2, $3)", tree_size, root, keys
            )

    async def replace_all(self, tree_size: int, root: bytes, keys: int, writes: Sequence[NodeWrite]) -> None:
        """A rebuilt map: every node at ``tree_size``, replacing all stored nodes, in one transaction; the
        version row is kept when it exists (its root is the same) or added."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("DELETE FROM map_nodes")
            await conn.copy_records_to_table(
                "map_nodes",
                records=[
                    (
                        w.depth,
                        position_bytes(w.depth, w.prefix),
                        tree_size,
                        w.hash,
                        None if w.leaf is None else w.leaf.key,
                        None if w.leaf is None else w.leaf.value.newest,
                        None if w.leaf is None else w.leaf.value.count,
                    )
                    for w in writes
                ],
                columns=["depth", "prefix", "version", "hash", "leaf_key", "newest", "count"],
            )
            await conn.execute(
                "INSERT INTO map_versions (tree_size, root, keys) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                tree_size,
                root,
                keys,
            )

    async def set_commitment(self, tree_size: int, index: int) -> None:
        await self.pool.execute("UPDATE map_versions SET commitment_idx = $2 WHERE tree_size = $1", tree_size, index)

    async def named(self, start: int, stop: int) -> list[tuple[int, list[str]]]:
        """``(index, the distinct artifact digests it names)`` of the entries from ``start`` to ``stop - 1``
        that name any, in index order (signer keys are not artifacts)."""
        rows = await self.pool.fetch(
            "SELECT idx, array_agg(DISTINCT digest ORDER BY digest) AS digests FROM entry_artifacts "
            "WHERE idx >= $1 AND idx < $2 AND role <> 'signer' GROUP BY idx ORDER BY idx",
            start,
            stop,
        )
        return [(r["idx"], list(r["digests"])) for r in rows]
