"""Completeness proofs for answers about artifacts: the newest map commitment inside the answer's tree, its
inclusion proof, and a map proof per digest (:mod:`atlas_log.vmap`), so a reader can prove it holds every
entry naming the artifact up to the committed size."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from atlas_log._encoding import b64encode
from atlas_log.vmap import KEY_BITS, MapProof, Position, StoredNode, map_key, path_positions, prove
from atlas_log_server.db.repository import Repository, StorageError
from atlas_log_server.db.vmap import MapRepository, MapSnapshot
from atlas_log_server.log.proofs import ProofService

_LEVELS = 64  # path levels read per query (a path deeper than this, from ground keys, takes more queries)


async def _prove(snap: MapSnapshot, version: int, digest: str) -> MapProof:
    key = map_key(digest)
    nodes: dict[Position, StoredNode] = {}
    loaded = 0

    def get(pos: Position) -> StoredNode | None:
        if pos[0] >= loaded:
            raise LookupError(pos)
        return nodes.get(pos)

    while True:
        try:
            return prove(get, key)
        except LookupError:
            if loaded > KEY_BITS:
                raise StorageError(f"the map path of {digest} does not end") from None
            nodes.update(await snap.nodes(path_positions(key, loaded, loaded + _LEVELS), version))
            loaded += _LEVELS


class Completeness:
    """Builds the ``completeness`` member of history, lineage and search answers."""

    def __init__(self, maps: MapRepository, repo: Repository, proofs: ProofService) -> None:
        self.maps = maps
        self.repo = repo
        self.proofs = proofs

    async def prove(self, digests: Sequence[str], size: int) -> dict[str, Any] | None:
        """For a tree of ``size`` leaves: ``{"commitment": {"logIndex", "leaf", "inclusionProof"}, "proofs":
        {digest: map proof}}``, or None while no commitment is in that tree."""
        async with self.maps.snapshot() as snap:
            version = await snap.committed(size)
            if version is None or version.commitment_index is None:
                return None
            proofs = {d: (await _prove(snap, version.tree_size, d)).to_json() for d in dict.fromkeys(digests)}
        index = version.commitment_index
        entry = await self.repo.entry_by_index(index)
        if entry is None:
            raise StorageError(f"map commitment entry {index} is missing")
        _, hashes = await self.proofs.inclusion(index, size)
        return {
            "commitment": {
                "logIndex": index,
                "leaf": b64encode(entry.leaf),
                "inclusionProof": [b64encode(h) for h in hashes],
            },
            "proofs": proofs,
        }
