"""Every SQL statement of the log. Callers get typed rows; nothing else here knows SQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg

from atlas_log.entry import LINKED_ROLES
from atlas_log.merkle import EMPTY_ROOT, HASH_SIZE, RootHash
from atlas_log.tiles import TILE_WIDTH, TileLevels
from atlas_log_server.db.replicas import reading
from atlas_log_server.errors import Internal


class StorageError(Internal):
    """The database refused or lost a write the log relies on, or holds data the log cannot use. The message
    (``str(error)``) is for the server's log; a client is told only that the server failed."""

    def __init__(self, message: str) -> None:
        super().__init__("internal-error", "the server failed to handle this request")
        self.args = (message,)


@dataclass(frozen=True, slots=True)
class LogState:
    origin: str
    size: int
    root_hash: RootHash
    frontier: tuple[bytes, ...]
    checkpoint: bytes | None
    frozen_note: bytes | None = None  # the final checkpoint, once the log is frozen


@dataclass(frozen=True, slots=True)
class StoredEntry:
    """An entry row: written by the sequencer, read back by everyone else."""

    index: int
    entry_id: bytes
    leaf_hash: bytes
    leaf: bytes
    submission: bytes
    integrated_time: int
    predicate_type: str | None = None
    quote_sha256: bytes | None = None  # what the entry's own quote's attestation key signed (SHA-256), if any


def _split_hashes(data: bytes) -> tuple[bytes, ...]:
    return tuple(data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE))


def _state(row: asyncpg.Record) -> LogState:
    return LogState(
        row["origin"],
        row["size"],
        RootHash(row["root_hash"]),
        _split_hashes(row["frontier"]),
        row["checkpoint"],
        row["frozen_note"],
    )


_SELECT_ENTRY = "SELECT idx, entry_id, leaf_hash, leaf, submission, integrated_time FROM entries WHERE "


def _entry(row: asyncpg.Record) -> StoredEntry:
    return StoredEntry(
        row["idx"], row["entry_id"], row["leaf_hash"], row["leaf"], row["submission"], row["integrated_time"]
    )


class BatchTransaction:
    """The statements of one sequencing batch, all inside one transaction that holds the tree-state lock."""

    def __init__(self, conn: asyncpg.pool.PoolConnectionProxy, origin: str) -> None:
        self._conn = conn
        self._origin = origin

    async def lock_state(self) -> LogState:
        """Lock the tree-state row: concurrent batches (any process) queue here, so batches serialise."""
        row = await self._conn.fetchrow("SELECT * FROM log_state WHERE origin = $1 FOR UPDATE", self._origin)
        if row is None:
            raise StorageError(f"log {self._origin!r} is not initialised")
        return _state(row)

    async def existing(self, entry_ids: Sequence[bytes]) -> dict[bytes, int]:
        # One unique-index probe per id, whatever plan the statement caches (a plan made while the table was
        # empty would otherwise scan it on every batch, under the log's lock).
        rows = await self._conn.fetch(
            "SELECT k.id, (SELECT e.idx FROM entries e WHERE e.entry_id = k.id) AS idx "
            "FROM unnest($1::bytea[]) AS k(id)",
            entry_ids,
        )
        return {r["id"]: r["idx"] for r in rows if r["idx"] is not None}

    async def quotes_in_use(self, quote_hashes: Sequence[bytes]) -> dict[bytes, int]:
        """For each quote hash, the entry that carries that quote (if any)."""
        if not quote_hashes:
            return {}
        rows = await self._conn.fetch(
            "SELECT k.q, (SELECT e.idx FROM entries e WHERE e.quote_sha256 = k.q) AS idx "
            "FROM unnest($1::bytea[]) AS k(q)",
            quote_hashes,
        )
        return {r["q"]: r["idx"] for r in rows if r["idx"] is not None}

    async def insert_entries(self, entries: Sequence[StoredEntry]) -> None:
        await self._conn.copy_records_to_table(
            "entries",
            records=[
                (
                    e.index,
                    e.entry_id,
                    e.leaf_hash,
                    e.leaf,
                    e.submission,
                    e.integrated_time,
                    e.predicate_type,
                    e.quote_sha256,
                )
                for e in entries
            ],
            columns=[
                "idx",
                "entry_id",
                "leaf_hash",
                "leaf",
                "submission",
                "integrated_time",
                "predicate_type",
                "quote_sha256",
            ],
        )

    async def last_naming(self, digests: Sequence[str]) -> dict[str, int]:
        """For each digest, the newest entry naming it as subject or material (back-link targets)."""
        if not digests:
            return {}
        # One index probe per digest: with ``digest = ANY($1)`` the prepared statement's generic plan
        # scans the whole table once the table is large, and the batch holds the log's lock meanwhile.
        rows = await self._conn.fetch(
            "SELECT d.digest, (SELECT a.idx FROM entry_artifacts a WHERE a.digest = d.digest "
            "AND a.role = ANY($2::text[]) ORDER BY a.idx DESC LIMIT 1) AS idx FROM unnest($1::text[]) AS d(digest)",
            digests,
            list(LINKED_ROLES),
        )
        return {r["digest"]: r["idx"] for r in rows if r["idx"] is not None}

    async def insert_artifacts(
        self, rows: Sequence[tuple[int, str, str, str | None, str, str | None, str | None]]
    ) -> None:
        if rows:
            await self._conn.copy_records_to_table(
                "entry_artifacts",
                records=rows,
                columns=["idx", "digest", "role", "name", "json_path", "version", "ml_role"],
            )

    async def insert_disclosures(self, rows: Sequence[tuple[int, str | None, bytes, bytes]]) -> None:
        """Sealed disclosures ``(index, tenant, wrapped key, ciphertext)`` of new entries, with them."""
        if rows:
            # One prepared statement (cached on the connection), one round trip: a COPY would ask the table's
            # column types first, and the batch holds the log's lock meanwhile.
            idx, tenant, wrapped, sealed = zip(*rows, strict=True)
            await self._conn.execute(
                "INSERT INTO entry_disclosures (idx, tenant, wrapped_key, ciphertext) "
                "SELECT * FROM unnest($1::bigint[], $2::text[], $3::bytea[], $4::bytea[])",
                list(idx),
                list(tenant),
                list(wrapped),
                list(sealed),
            )

    async def write_tiles(self, writes: Iterable[tuple[int, int, int, bytes]]) -> None:
        """Apply ``(level, index, existing_width, appended_hashes)``: insert new tiles, extend partial ones. A
        tile that becomes full is stored with its inner nodes, so that no proof ever hashes it again."""
        inserts = []
        for level, index, width, data in writes:
            full = width * HASH_SIZE + len(data) == TILE_WIDTH * HASH_SIZE
            if width == 0:
                inserts.append((level, index, data, TileLevels(data).inner if full else None))
                continue
            nodes = None
            if full:
                prefix = await self._conn.fetchval(
                    "SELECT hashes FROM tiles WHERE level = $1 AND idx = $2", level, index
                )
                if prefix is None or len(prefix) != width * HASH_SIZE:
                    raise StorageError(f"tile {level}/{index} does not have the expected width {width}")
                nodes = TileLevels(prefix + data).inner
            status = await self._conn.execute(
                "UPDATE tiles SET hashes = hashes || $3, nodes = $5 "
                "WHERE level = $1 AND idx = $2 AND length(hashes) = $4",
                level,
                index,
                data,
                width * HASH_SIZE,
                nodes,
            )
            if status != "UPDATE 1":
                raise StorageError(f"tile {level}/{index} does not have the expected width {width}")
        if inserts:
            await self._conn.executemany(
                "INSERT INTO tiles (level, idx, hashes, nodes) VALUES ($1, $2, $3, $4)", inserts
            )

    async def save_checkpoint(self, size: int, root: bytes, frontier: Sequence[bytes], note: bytes) -> None:
        await self._conn.execute(
            "INSERT INTO checkpoints (size, root_hash, note) VALUES ($1, $2, $3)", size, root, note
        )
        status = await self._conn.execute(
            "UPDATE log_state SET size = $2, root_hash = $3, frontier = $4, checkpoint = $5, updated_at = now() "
            "WHERE origin = $1",
            self._origin,
            size,
            root,
            b"".join(frontier),
            note,
        )
        if status != "UPDATE 1":
            raise StorageError("tree state row vanished during the batch")


class Repository:
    """Reads and the sequencing transaction, over an asyncpg pool."""

    def __init__(self, pool: asyncpg.Pool, origin: str) -> None:
        self.pool = pool
        self.origin = origin

    async def init_log(self, empty_checkpoint: bytes) -> LogState:
        """Create the tree-state row for this origin if absent; refuse a database that holds another log.

        ``empty_checkpoint`` is the signed size-0 checkpoint, stored when the log has none yet, so that
        ``/checkpoint`` always has something signed to serve.
        """
        async with self.pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO log_state (origin, size, root_hash, frontier) VALUES ($1, 0, $2, '') "
                "ON CONFLICT (origin) DO NOTHING",
                self.origin,
                EMPTY_ROOT,
            )
            others = await conn.fetch("SELECT origin FROM log_state WHERE origin <> $1", self.origin)
            if others:
                raise StorageError(
                    f"database already holds log {others[0]['origin']!r}; refusing to serve {self.origin!r} from it"
                )
            async with conn.transaction():
                row = await conn.fetchrow("SELECT * FROM log_state WHERE origin = $1 FOR UPDATE", self.origin)
                assert row is not None
                if row["checkpoint"] is None and row["size"] == 0:
                    await conn.execute(
                        "INSERT INTO checkpoints (size, root_hash, note) VALUES (0, $1, $2) ON CONFLICT DO NOTHING",
                        EMPTY_ROOT,
                        empty_checkpoint,
                    )
                    row = await conn.fetchrow(
                        "UPDATE log_state SET checkpoint = $2 WHERE origin = $1 RETURNING *",
                        self.origin,
                        empty_checkpoint,
                    )
        assert row is not None
        return _state(row)

    async def freeze(self, make_note: Callable[[LogState], bytes]) -> bytes:
        """Freeze the log at its current tree: ``make_note`` signs the final checkpoint for the locked state.
        Batches wait on the same lock, and the database refuses any change of a frozen state."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow("SELECT * FROM log_state WHERE origin = $1 FOR UPDATE", self.origin)
            if row is None:
                raise StorageError(f"log {self.origin!r} is not initialised")
            state = _state(row)
            if state.frozen_note is not None:
                return state.frozen_note
            note = make_note(state)
            await conn.execute("UPDATE log_state SET frozen_note = $2 WHERE origin = $1", self.origin, note)
            return note

    async def analyze(self) -> None:
        """Refresh the planner's statistics of the growing tables (their cached plans are then re-made)."""
        await self.pool.execute("ANALYZE entries, entry_artifacts, tiles, checkpoints")

    @asynccontextmanager
    async def batch(self) -> AsyncIterator[BatchTransaction]:
        async with self.pool.acquire() as conn, conn.transaction():
            yield BatchTransaction(conn, self.origin)

    @property
    def _reads(self) -> asyncpg.Pool:
        """Where the reads below go: the request's pinned read replica, or the primary (:mod:`.replicas`)."""
        return reading(self.pool)

    async def state(self) -> LogState:
        row = await self._reads.fetchrow("SELECT * FROM log_state WHERE origin = $1", self.origin)
        if row is None:
            raise StorageError(f"log {self.origin!r} is not initialised")
        return _state(row)

    async def entry_by_index(self, index: int) -> StoredEntry | None:
        row = await self._reads.fetchrow(_SELECT_ENTRY + "idx = $1", index)
        return None if row is None else _entry(row)

    async def entry_by_leaf_hash(self, leaf_hash: bytes) -> StoredEntry | None:
        row = await self._reads.fetchrow(_SELECT_ENTRY + "leaf_hash = $1", leaf_hash)
        return None if row is None else _entry(row)

    async def leaves(self, start: int, count: int) -> list[bytes]:
        rows = await self._reads.fetch(
            "SELECT leaf FROM entries WHERE idx >= $1 AND idx < $2 ORDER BY idx", start, start + count
        )
        return [r["leaf"] for r in rows]

    async def submissions(self, start: int, count: int) -> list[bytes]:
        rows = await self._reads.fetch(
            "SELECT submission FROM entries WHERE idx >= $1 AND idx < $2 ORDER BY idx", start, start + count
        )
        return [bytes(r["submission"]) for r in rows]

    async def submissions_at(self, indices: Sequence[int]) -> dict[int, bytes]:
        """The stored submissions of these entries (index → bytes)."""
        rows = await self._reads.fetch(
            "SELECT idx, submission FROM entries WHERE idx = ANY($1::bigint[])", list(indices)
        )
        return {r["idx"]: bytes(r["submission"]) for r in rows}

    async def tiles(self, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """Current contents of the given tiles (a partial tile may have grown since; tiles only grow)."""
        if not keys:
            return {}
        # A scalar subquery per key keeps one primary-key probe each whatever plan the statement caches.
        rows = await self._reads.fetch(
            "SELECT k.level, k.idx, (SELECT t.hashes FROM tiles t WHERE t.level = k.level AND t.idx = k.idx) "
            "AS hashes FROM unnest($1::smallint[], $2::bigint[]) AS k(level, idx)",
            [k[0] for k in keys],
            [k[1] for k in keys],
        )
        return {(r["level"], r["idx"]): r["hashes"] for r in rows if r["hashes"] is not None}

    async def tile_levels(self, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], tuple[bytes, bytes | None]]:
        """Like :meth:`tiles`, with each tile's stored inner nodes (None for a partial tile, or a full one written
        before they were stored): what a proof reads, so that it hashes nothing."""
        if not keys:
            return {}
        rows = await self._reads.fetch(
            "SELECT k.level, k.idx, t.hashes, t.nodes FROM unnest($1::smallint[], $2::bigint[]) AS k(level, idx) "
            "CROSS JOIN LATERAL (SELECT hashes, nodes FROM tiles t WHERE t.level = k.level AND t.idx = k.idx) t",
            [k[0] for k in keys],
            [k[1] for k in keys],
        )
        return {(r["level"], r["idx"]): (r["hashes"], r["nodes"]) for r in rows}

    async def aliases(self, digest: str) -> list[str]:
        """Other digests of the same artifact: named together with ``digest`` in one descriptor of some entry
        (e.g. its sha256 and sha512)."""
        rows = await self._reads.fetch(
            "SELECT DISTINCT b.digest FROM entry_artifacts a JOIN entry_artifacts b "
            "ON b.idx = a.idx AND b.role = a.role AND b.json_path = a.json_path "
            "WHERE a.digest = $1 AND b.digest <> $1 AND a.role <> 'signer' ORDER BY b.digest",
            digest,
        )
        return [r["digest"] for r in rows]

    async def history(self, digests: Sequence[str], before: int, limit: int) -> list[tuple[int, bytes, list[str]]]:
        """Entries naming any of ``digests`` with index < ``before``, newest first: (index, leaf, roles)."""
        rows = await self._reads.fetch(
            "SELECT a.idx, e.leaf, array_agg(DISTINCT a.role ORDER BY a.role) AS roles "
            "FROM entry_artifacts a JOIN entries e ON e.idx = a.idx "
            "WHERE a.digest = ANY($1::text[]) AND a.idx < $2 GROUP BY a.idx, e.leaf ORDER BY a.idx DESC LIMIT $3",
            list(digests),
            before,
            limit,
        )
        return [(r["idx"], bytes(r["leaf"]), list(r["roles"])) for r in rows]

    async def lineage(
        self, digest: str, from_roles: Sequence[str], to_roles: Sequence[str], depth: int, below: int, limit: int
    ) -> list[tuple[str, str, int]]:
        """Edges reachable from ``digest`` within ``depth`` hops: an entry naming an artifact in ``from_roles``
        links it to every artifact the entry names in ``to_roles``. Returns (from, to, entry index) for entries
        below index ``below``, at most ``limit`` of them, nearest first (by hop, then entry index).

        Breadth first, one bounded query per hop: each artifact is expanded once, at its distance from
        ``digest``, so the work grows with the edges returned, never with the paths through them (a DAG a few
        artifacts wide and a few layers deep has exponentially many paths). An edge into an artifact already
        seen (a cross or cycle edge) is returned, but that artifact is not expanded again. The walk stops as
        soon as ``limit`` edges are found: a caller asking ``limit = cap + 1`` learns that the cap was hit."""
        edges: list[tuple[str, str, int]] = []
        seen, frontier = {digest}, [digest]
        for _ in range(depth):
            if not frontier or len(edges) >= limit:
                break
            rows = await self._reads.fetch(
                "SELECT DISTINCT a.digest AS src, b.digest AS dst, a.idx FROM entry_artifacts a "
                "JOIN entry_artifacts b ON b.idx = a.idx AND b.role = ANY($3::text[]) AND b.digest <> a.digest "
                "WHERE a.digest = ANY($1::text[]) AND a.role = ANY($2::text[]) AND a.idx < $4 "
                "ORDER BY a.idx, src, dst LIMIT $5",
                frontier,
                list(from_roles),
                list(to_roles),
                below,
                limit - len(edges),
            )
            frontier = []
            for r in rows:
                edges.append((r["src"], r["dst"], r["idx"]))
                if r["dst"] not in seen:
                    seen.add(r["dst"])
                    frontier.append(r["dst"])
        return edges

    async def named(self, indices: Sequence[int]) -> dict[int, list[dict[str, str | None]]]:
        """The named artifacts (name, version, digest, role) of these entries, from the index."""
        rows = await self._reads.fetch(
            "SELECT idx, digest, role, name, version, ml_role FROM entry_artifacts "
            "WHERE idx = ANY($1::bigint[]) AND (name IS NOT NULL OR ml_role IS NOT NULL) "
            "ORDER BY idx, json_path, digest",
            list(indices),
        )
        out: dict[int, list[dict[str, str | None]]] = {}
        for r in rows:
            out.setdefault(r["idx"], []).append(
                {"name": r["name"], "version": r["version"], "digest": r["digest"], "role": r["role"]}
                | ({"mlRole": r["ml_role"]} if r["ml_role"] is not None else {})
            )
        return out

    async def predicate_types(self, indices: Sequence[int]) -> dict[int, str | None]:
        """The statement type (``predicateType``) of each of these entries."""
        rows = await self._reads.fetch(
            "SELECT idx, predicate_type FROM entries WHERE idx = ANY($1::bigint[])", list(indices)
        )
        return {r["idx"]: r["predicate_type"] for r in rows}

    async def leaves_at(self, indices: Sequence[int]) -> dict[int, bytes]:
        rows = await self._reads.fetch("SELECT idx, leaf FROM entries WHERE idx = ANY($1::bigint[])", list(indices))
        return {r["idx"]: bytes(r["leaf"]) for r in rows}

    async def search(
        self,
        *,
        name: str | None,
        predicate_type: str | None,
        signer: str | None,
        since: int | None,
        until: int | None,
        before: int,
        limit: int,
    ) -> list[tuple[int, bytes]]:
        """Entries matching every given filter, newest first, with index < ``before``: (index, leaf)."""
        rows = await self._reads.fetch(
            "SELECT e.idx, e.leaf FROM entries e WHERE e.idx < $6 "
            "AND ($1::text IS NULL OR EXISTS (SELECT 1 FROM entry_artifacts a WHERE a.idx = e.idx "
            "     AND lower(a.name) = lower($1))) "
            "AND ($2::text IS NULL OR e.predicate_type = $2) "
            "AND ($3::text IS NULL OR EXISTS (SELECT 1 FROM entry_artifacts s WHERE s.idx = e.idx "
            "     AND s.role = 'signer' AND s.digest = $3)) "
            "AND ($4::bigint IS NULL OR e.integrated_time >= $4) AND ($5::bigint IS NULL OR e.integrated_time < $5) "
            "ORDER BY e.idx DESC LIMIT $7",
            name,
            predicate_type,
            signer,
            since,
            until,
            before,
            limit,
        )
        return [(r["idx"], bytes(r["leaf"])) for r in rows]

    async def checkpoint_by_root(self, root: bytes) -> tuple[int, float] | None:
        """(size, age in seconds) of the first checkpoint with this root hash, if any.

        The age is that of its newest publication (or of its signing, if later): an idle log re-publishes
        its unchanged checkpoint, and the root it serves is then as young as that re-publication.
        """
        row = await self._reads.fetchrow(
            "SELECT c.size, extract(epoch FROM now() - greatest(c.created_at, "
            "(SELECT max(p.created_at) FROM published_checkpoints p WHERE p.size = c.size)))::float8 AS age "
            "FROM checkpoints c WHERE c.root_hash = $1 ORDER BY c.size LIMIT 1",
            root,
        )
        return None if row is None else (row["size"], row["age"])

    async def publish(self, size: int, note: bytes, cosigners: int) -> None:
        await self.pool.execute(
            "INSERT INTO published_checkpoints (size, note, cosigners) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            size,
            note,
            cosigners,
        )

    async def latest_published(self) -> tuple[int, bytes] | None:
        row = await self._reads.fetchrow(
            "SELECT size, note FROM published_checkpoints ORDER BY size DESC, created_at DESC LIMIT 1"
        )
        return None if row is None else (row["size"], bytes(row["note"]))

    async def latest_publication(self) -> tuple[int, float] | None:
        """(size, age in seconds by the database's clock) of the newest publication, if any."""
        row = await self._reads.fetchrow(
            "SELECT size, extract(epoch FROM now() - created_at)::float8 AS age FROM published_checkpoints "
            "ORDER BY size DESC, created_at DESC LIMIT 1"
        )
        return None if row is None else (row["size"], row["age"])
