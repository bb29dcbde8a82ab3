"""Proofs for the read path, computed from tiles through an in-process cache of immutable full tiles."""

from __future__ import annotations

from collections import OrderedDict

from atlas_log.merkle import HASH_SIZE, Hash
from atlas_log.tiles import TileLevels, TileSource, proof_tiles
from atlas_log_server.db.repository import Repository, StorageError


class ProofService:
    def __init__(self, repo: Repository, cache_tiles: int) -> None:
        self.repo = repo
        self.capacity = cache_tiles
        self._cache: OrderedDict[tuple[int, int], TileLevels] = OrderedDict()

    async def source(self, size: int, *, index: int | None = None, old_size: int | None = None) -> TileSource:
        """A node source holding every tile the requested proof needs at tree ``size``."""
        tiles: dict[tuple[int, int], TileLevels] = {}
        missing = []
        for addr in proof_tiles(size, index=index, old_size=old_size):
            assert addr.level is not None
            key = (addr.level, addr.index)
            cached = self._cache.get(key) if addr.full else None
            if cached is not None:
                self._cache.move_to_end(key)
                tiles[key] = cached
            else:
                missing.append(addr)
        if missing:
            fetched = await self.repo.tiles([(a.level, a.index) for a in missing if a.level is not None])
            for a in missing:
                assert a.level is not None
                key = (a.level, a.index)
                data = fetched.get(key)
                if data is None or len(data) < a.width * HASH_SIZE:
                    raise StorageError(f"tile {a.path()} is missing from storage")
                levels = TileLevels(data[: a.width * HASH_SIZE])
                tiles[key] = levels
                if a.full and self.capacity:
                    self._cache[key] = levels
                    if len(self._cache) > self.capacity:
                        self._cache.popitem(last=False)
        return TileSource(size, tiles)

    async def inclusion(self, index: int, size: int) -> list[Hash]:
        return (await self.source(size, index=index)).inclusion_proof(index)

    async def consistency(self, old_size: int, size: int) -> list[Hash]:
        if old_size == size:
            return []
        return (await self.source(size, old_size=old_size)).consistency_proof(old_size)
