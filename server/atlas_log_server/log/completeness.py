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

_LEVELS = 24  # path levels read per round: a map of up to about 16 million keys is proved in one query


async def _prove(snap: MapSnapshot, version: int, digests: Sequence[str]) -> dict[str, MapProof]:
    """The map proof of each digest, reading the positions of every path level range in one query for all of
    them (an answer about a thousand artifacts costs a query, not a thousand)."""
    pending = {d: map_key(d) for d in dict.fromkeys(digests)}
    nodes: dict[Position, StoredNode] = {}
    proofs: dict[str, MapProof] = {}
    loaded = 0

    def get(pos: Position) -> StoredNode | None:
        if pos[0] >= loaded:
            raise LookupError(pos)
        return nodes.get(pos)

    while pending:
        if loaded > KEY_BITS:
            raise StorageError(f"the map path of {min(pending)} does not end")
        wanted = dict.fromkeys(p for key in pending.values() for p in path_positions(key, loaded, loaded + _LEVELS))
        nodes.update(await snap.nodes(list(wanted), version))
        loaded += _LEVELS
        for digest, key in list(pending.items()):
            try:
                proofs[digest] = prove(get, key)
            except LookupError:
                continue
            del pending[digest]
    return proofs


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
            proofs = {d: p.to_json() for d, p in (await _prove(snap, version.tree_size, digests)).items()}
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
