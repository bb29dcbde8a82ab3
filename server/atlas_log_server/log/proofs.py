"""Proofs for the read path, computed from tiles through an in-process cache of immutable tiles.

A full tile never changes, and neither does a partial tile of a given width (a wider one is a different
tile), so both are cached by ``(level, index, width)``: a warm proof costs no database round trip and a
single pass over the proof's nodes. Tiles missing from the cache are read together: every proof that misses
in one turn of the event loop waits on one query, and a tile already being read is not read again. At start
the cache is filled in the background (:meth:`ProofService.prewarm`), so the first proofs after a restart
do not each pay a round trip.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import TypeVar

import asyncpg

from atlas_log.merkle import (
    HASH_SIZE,
    Hash,
    LeafHash,
    NodeSource,
    consistency_proof,
    inclusion_proof,
    inclusion_proofs,
    subtree_root,
)
from atlas_log.tiles import TILE_HEIGHT, TILE_WIDTH, TileLevels, node_tile, tile_path, tile_width
from atlas_log_server.db.replicas import pinned, reading
from atlas_log_server.db.repository import Repository, StorageError
from atlas_log_server.errors import InvalidRequest
from atlas_log_server.metrics import Metrics

T = TypeVar("T")
TileKey = tuple[int, int, int]  # (level, index, width)
_PLACEHOLDER = bytes(HASH_SIZE)
READ_BATCH_TILES = 256  # tiles per query (4 MiB of hashes and inner nodes at most)
_log = logging.getLogger(__name__)


def tree_tiles(size: int) -> list[TileKey]:
    """Every tile of the tree of ``size`` leaves, upper levels first (every proof touches them), level 0 last
    and newest first (recent entries are the ones asked about most)."""
    levels: list[list[TileKey]] = []
    level = 0
    while nodes := size >> (TILE_HEIGHT * level):  # nodes of height 8·level: what level's tiles hold
        tiles = -(-nodes // TILE_WIDTH)
        levels.append([(level, i, tile_width(level, i, size)) for i in reversed(range(tiles))])
        level += 1
    return [key for keys in reversed(levels) for key in keys]


def _levels(key: TileKey, fetched: dict[tuple[int, int], tuple[bytes, bytes | None]]) -> TileLevels:
    """Tile ``key`` from what storage returned; :class:`StorageError` when it is not there at that width."""
    level, index, width = key
    data, inner = fetched.get((level, index), (b"", None))
    if len(data) < width * HASH_SIZE:
        raise StorageError(f"tile {tile_path(level, index, width)} is missing from storage")
    # A full tile's stored inner nodes spare hashing it; a partial one (or one filled before they were stored)
    # is hashed here, at the width this tree needs.
    full = inner is not None and len(data) == width * HASH_SIZE
    return TileLevels(data, inner) if full else TileLevels(data[: width * HASH_SIZE])


class ProofService:
    """Inclusion and consistency proofs of the log's trees. :meth:`inclusion` and :meth:`consistency` trust
    their sizes (the log's own checkpoints); :meth:`checked_inclusion` and :meth:`checked_consistency` answer a
    client's request and first check it against the log's size."""

    def __init__(self, repo: Repository, cache_tiles: int, metrics: Metrics | None = None) -> None:
        self.repo = repo
        self.capacity = cache_tiles
        self.metrics = metrics
        self._cache: OrderedDict[TileKey, TileLevels] = OrderedDict()
        self._known_size = 0  # the largest tree size this process has seen committed
        # Tiles asked for and being read, by the pool they are read from; those asked for in this turn of the
        # event loop, read at its end; the reads under way; the loop all this belongs to.
        self._reading: dict[tuple[asyncpg.Pool, TileKey], asyncio.Future[TileLevels]] = {}
        self._queued: dict[asyncpg.Pool, list[TileKey]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    async def _check_size(self, size: int, name: str) -> None:
        """Raise :class:`InvalidRequest` when the log has no tree of ``size`` (the request's parameter ``name``).
        Sizes only grow, so a size at or below one already seen needs no database round trip."""
        if size <= self._known_size:
            return
        state = await self.repo.state()
        self._known_size = max(self._known_size, state.size)
        if size > state.size:
            raise InvalidRequest("tree-size-too-large", f"{name} ({size}) exceeds the log's size {state.size}")

    async def checked_inclusion(self, index: int, tree_size: int) -> tuple[LeafHash, list[Hash]]:
        """:meth:`inclusion` for a request; raises :class:`InvalidRequest` unless ``index < tree_size`` and the
        log has a tree of ``tree_size`` leaves."""
        if index >= tree_size:
            raise InvalidRequest("index-out-of-range", f"index {index} must be smaller than treeSize {tree_size}")
        await self._check_size(tree_size, "treeSize")
        return await self.inclusion(index, tree_size)

    async def checked_consistency(self, first: int, second: int) -> list[Hash]:
        """:meth:`consistency` for a request; raises :class:`InvalidRequest` unless ``first <= second`` and the
        log has a tree of ``second`` leaves."""
        if first > second:
            raise InvalidRequest("invalid-range", f"from ({first}) must not exceed to ({second})")
        await self._check_size(second, "to")
        return await self.consistency(first, second)

    async def _compute(self, size: int, fn: Callable[[NodeSource], T]) -> T:
        """Run ``fn`` over the tree of ``size`` leaves; tiles not in the cache are loaded and ``fn`` rerun.

        Which nodes a proof needs does not depend on their values, so the second pass never misses.
        """
        local: dict[tuple[int, int], TileLevels] = {}
        for _ in range(2):
            missing: set[TileKey] = set()

            def source(height: int, index: int, missing: set[TileKey] = missing) -> bytes:
                level, tindex, r, pos = node_tile(height, index)
                t = local.get((level, tindex))
                if t is None:
                    key = (level, tindex, tile_width(level, tindex, size))
                    t = self._cache.get(key)
                    if t is None:
                        missing.add(key)
                        return _PLACEHOLDER
                    self._cache.move_to_end(key)  # least recently used goes first: upper tiles stay
                    local[(level, tindex)] = t
                node = t.node(r, pos)
                if node is None:
                    raise StorageError(f"tile {tile_path(level, tindex)} has no node ({height}, {index})")
                return node

            result = fn(source)
            if not missing:
                return result
            await self._load(missing, local)
        raise StorageError("tiles changed while a proof was computed")

    async def _load(self, keys: set[TileKey], local: dict[tuple[int, int], TileLevels]) -> None:
        order = list(keys)
        for (level, index, _), levels in zip(order, await self._tiles(order), strict=True):
            local[(level, index)] = levels

    async def _tiles(self, keys: Sequence[TileKey]) -> list[TileLevels]:
        """The tiles ``keys`` (in their order), read with every other tile asked for in this turn of the event
        loop from the same database (the request's read replica, or the primary); a tile already being read
        from it is waited for, not read twice."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # reads begun on another (closed) loop can never finish on this one
            self._loop, self._reading, self._queued = loop, {}, {}
        pool = reading(self.repo.pool)
        waits = []
        for key in keys:
            future = self._reading.get((pool, key))
            if future is None:
                future = self._reading[(pool, key)] = loop.create_future()
                if not self._queued:
                    loop.call_soon(self._read_queued)
                self._queued.setdefault(pool, []).append(key)
            waits.append(future)
        # Shielded: one request given up on (a client gone) must not cancel a read that others wait on.
        return list(await asyncio.shield(asyncio.gather(*waits)))

    def _read_queued(self) -> None:
        queued, self._queued = self._queued, {}
        for pool, keys in queued.items():
            for start in range(0, len(keys), READ_BATCH_TILES):
                task = asyncio.get_running_loop().create_task(self._read(pool, keys[start : start + READ_BATCH_TILES]))
                self._tasks.add(task)  # the loop keeps tasks only weakly
                task.add_done_callback(self._read_done)

    def _read_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled():
            task.exception()  # each waiter has it

    async def _read(self, pool: asyncpg.Pool, keys: list[TileKey]) -> None:
        """Read ``keys`` from ``pool`` in one query, cache them and hand each to whoever waits for it; a tile
        missing there fails only the proofs that need it, a failed query every proof waiting on it."""
        try:
            with pinned(pool):
                fetched = await self.repo.tile_levels([(level, index) for level, index, _ in keys])
        except BaseException as exc:
            for key in keys:
                future = self._reading.pop((pool, key))
                if not future.done():
                    future.set_exception(exc if isinstance(exc, Exception) else StorageError("tile read cancelled"))
                    future.exception()  # retrieved here: nobody may be waiting any more
            raise
        for key in keys:
            future = self._reading.pop((pool, key))
            try:
                tile = _levels(key, fetched)
            except StorageError as exc:
                if not future.done():
                    future.set_exception(exc)
                    future.exception()
                continue
            self._keep(key, tile)
            if not future.done():
                future.set_result(tile)
        self._count()

    def _count(self) -> None:
        if self.metrics is not None:
            self.metrics.tile_cache_tiles.set(len(self._cache))

    async def _fetch(self, keys: Sequence[TileKey]) -> list[TileLevels]:
        fetched = await self.repo.tile_levels([(level, index) for level, index, _ in keys])
        return [_levels(key, fetched) for key in keys]

    def _keep(self, key: TileKey, tile: TileLevels) -> None:
        if self.capacity:
            self._cache[key] = tile
            if len(self._cache) > self.capacity:
                self._cache.popitem(last=False)

    async def root(self, size: int) -> Hash:
        return await self._compute(size, lambda src: subtree_root(0, size, src))

    async def inclusion(self, index: int, size: int) -> tuple[LeafHash, list[Hash]]:
        """The leaf hash at ``index`` (from its level-0 tile) and its inclusion proof in the tree of ``size``."""
        return await self._compute(size, lambda src: (LeafHash(src(0, index)), inclusion_proof(index, size, src)))

    async def inclusions(self, indices: Sequence[int], size: int) -> dict[int, list[Hash]]:
        """The inclusion proofs of many entries in the tree of ``size``, computed together (an answer about a
        thousand entries hashes the tree's ragged right edge once, not a thousand times)."""
        if not indices:
            return {}
        return await self._compute(size, lambda src: inclusion_proofs(indices, size, src))

    async def consistency(self, old_size: int, size: int) -> list[Hash]:
        if old_size == size:
            return []
        return await self._compute(size, lambda src: consistency_proof(old_size, size, src))

    async def prewarm(self, size: int) -> int:
        """Fill the cache with the tiles of the tree of ``size`` (upper levels, then level 0 newest first)
        until it is full, reading :data:`READ_BATCH_TILES` at a time so requests go on meanwhile; it never
        evicts what is cached. Returns the number of tiles read. Best effort: a failed read is logged and ends
        it (proofs then read what they miss)."""
        if not self.capacity:
            return 0
        started = time.monotonic()
        wanted = tree_tiles(size)
        if len(wanted) > self.capacity:
            _log.warning(
                "the tile cache holds %d tiles of this tree's %d: proofs of older entries read PostgreSQL; "
                "ATLAS_TILE_CACHE_TILES=%d keeps them all (about %d MiB per process)",
                self.capacity,
                len(wanted),
                len(wanted),
                len(wanted) * 2 * TILE_WIDTH * HASH_SIZE >> 20,
            )
        read = 0
        try:
            for start in range(0, len(wanted), READ_BATCH_TILES):
                room = self.capacity - len(self._cache)
                if room <= 0:
                    break
                batch = [k for k in wanted[start : start + READ_BATCH_TILES] if k not in self._cache][:room]
                if not batch:
                    continue
                for key, tile in zip(batch, await self._fetch(batch), strict=True):
                    if key not in self._cache and len(self._cache) < self.capacity:
                        self._cache[key] = tile
                        self._cache.move_to_end(key, last=False)  # evicted before what requests use
                read += len(batch)
                self._count()
        except Exception as exc:  # a warm-up is an optimisation: proofs read what they miss
            _log.warning("tile cache warm-up stopped after %d tiles: %s", read, exc)
            return read
        _log.info("tile cache warmed: %d tiles in %.1f s", read, time.monotonic() - started)
        return read
