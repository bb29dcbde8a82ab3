"""Proofs for the read path, computed from tiles through an in-process cache of immutable tiles.

A full tile never changes, and neither does a partial tile of a given width (a wider one is a different
tile), so both are cached by ``(level, index, width)``: a warm proof costs no database round trip and a
single pass over the proof's nodes.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import TypeVar

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
from atlas_log.tiles import TileLevels, node_tile, tile_path, tile_width
from atlas_log_server.db.repository import Repository, StorageError
from atlas_log_server.errors import InvalidRequest

T = TypeVar("T")
_PLACEHOLDER = bytes(HASH_SIZE)


class ProofService:
    """Inclusion and consistency proofs of the log's trees. :meth:`inclusion` and :meth:`consistency` trust
    their sizes (the log's own checkpoints); :meth:`checked_inclusion` and :meth:`checked_consistency` answer a
    client's request and first check it against the log's size."""

    def __init__(self, repo: Repository, cache_tiles: int) -> None:
        self.repo = repo
        self.capacity = cache_tiles
        self._cache: OrderedDict[tuple[int, int, int], TileLevels] = OrderedDict()
        self._known_size = 0  # the largest tree size this process has seen committed

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
            missing: set[tuple[int, int, int]] = set()

            def source(height: int, index: int, missing: set[tuple[int, int, int]] = missing) -> bytes:
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

    async def _load(self, keys: set[tuple[int, int, int]], local: dict[tuple[int, int], TileLevels]) -> None:
        fetched = await self.repo.tile_levels([(level, index) for level, index, _ in keys])
        for level, index, width in keys:
            data, inner = fetched.get((level, index), (b"", None))
            if len(data) < width * HASH_SIZE:
                raise StorageError(f"tile {tile_path(level, index, width)} is missing from storage")
            # A full tile's stored inner nodes spare hashing it; a partial one (or one filled before they
            # were stored) is hashed here, at the width this tree needs.
            full = inner is not None and len(data) == width * HASH_SIZE
            levels = TileLevels(data, inner) if full else TileLevels(data[: width * HASH_SIZE])
            local[(level, index)] = levels
            if self.capacity:
                self._cache[(level, index, width)] = levels
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
