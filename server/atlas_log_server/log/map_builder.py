"""The map builder: right behind the sequencer, it folds the leaves sequenced since the last map version into
the verifiable map (:mod:`atlas_log.vmap`) and commits the new root with an entry in the log itself.

Each round (one process at a time, under an advisory lock): read the digests the entries from the last
version's tree size to the log's size name (the artifact index, written with each entry from the facts its
leaf commits to), update the stored map (only the positions on changed paths), store the new version, then
append its :class:`~atlas_log.vmap.MapCommitment` through the sequencer like any entry.
A version whose commitment was not yet sequenced (a crash in between) is committed first on the next round;
the commitment's entry ID is fixed by the tree size, so committing twice yields the one entry.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Generator

from atlas_log.entry import canonical_json
from atlas_log.vmap import (
    MapCommitment,
    MapKey,
    MapRoot,
    MemoryMap,
    NodeWrite,
    Position,
    StoredNode,
    map_changes,
    update_steps,
)
from atlas_log_server.db.repository import Repository
from atlas_log_server.db.vmap import MapRepository, MapVersion
from atlas_log_server.log.sequencer import PendingEntry, Sequencer

_log = logging.getLogger(__name__)

MAX_STEP_LEAVES = 50_000  # leaves folded into one version: a long backlog is caught up in bounded steps
_READ_CHUNK = 5_000


def commitment_entry(version: MapVersion, now: int) -> PendingEntry:
    """The log entry committing ``version``. Its ID depends only on the tree size: one commitment per size."""
    commitment = MapCommitment(version.tree_size, version.root, version.keys)
    body = canonical_json(commitment.body())
    return PendingEntry(commitment.entry_id, body, body, now)


def _advance(
    steps: Generator[list[Position], dict[Position, StoredNode], tuple[bytes, int, list[NodeWrite]]],
    found: dict[Position, StoredNode],
) -> list[Position] | tuple[bytes, int, list[NodeWrite]]:
    """The next positions the update needs, or its result (a StopIteration cannot cross a thread's future)."""
    try:
        return steps.send(found)
    except StopIteration as done:
        result: tuple[bytes, int, list[NodeWrite]] = done.value
        return result


class MapBuilder:
    def __init__(self, maps: MapRepository, repo: Repository, sequencer: Sequencer, interval_s: float) -> None:
        self.maps = maps
        self.repo = repo
        self.sequencer = sequencer
        self.interval_s = interval_s

    async def run(self) -> None:
        """Build and commit forever, a round starting every ``interval_s`` (at once again while a backlog
        remains): an entry waits at most one interval plus one round for its commitment."""
        while True:
            started = time.monotonic()
            try:
                behind = await self.step()
            except Exception:  # a failed round must not stop the map; the next round retries
                _log.exception("building the map failed")
                behind = False
            if not behind:
                await asyncio.sleep(max(0.0, self.interval_s - (time.monotonic() - started)))

    async def step(self) -> bool:
        """One round; returns whether leaves remain to be folded (a backlog)."""
        async with self.maps.builder_lock() as held:
            if not held:
                return False
            latest = await self.maps.latest()
            if latest is not None and latest.commitment_index is None:
                await self._commit(latest)
                return True
            start = 0 if latest is None else latest.tree_size
            size = (await self.repo.state()).size
            stop = min(size, start + MAX_STEP_LEAVES)
            if stop <= start:
                return False
            changes: dict[MapKey, tuple[str, int, int]] = {}
            for at in range(start, stop, _READ_CHUNK):
                map_changes(await self.maps.named(at, min(stop, at + _READ_CHUNK)), changes)
            if not changes:
                # Nothing to add (commitments and entries naming nothing): no new version, or the log would
                # commit its own commitments forever.
                return False
            steps = update_steps(changes)
            wanted: list[Position] | tuple[bytes, int, list[NodeWrite]] = next(steps)
            async with self.maps.snapshot() as snap:
                while isinstance(wanted, list):
                    found = await snap.nodes(wanted, start)
                    # The hashing runs off the event loop, which keeps answering requests meanwhile.
                    wanted = await asyncio.to_thread(_advance, steps, found)
            root, added, writes = wanted
            version = MapVersion(stop, MapRoot(root), (0 if latest is None else latest.keys) + added, None)
            await self.maps.write_version(version.tree_size, root, version.keys, writes)
            await self._commit(version)
            return stop < size

    async def _commit(self, version: MapVersion) -> None:
        placed = await self.sequencer.submit(commitment_entry(version, int(time.time())))
        await self.maps.set_commitment(version.tree_size, placed.index)


async def rebuild(maps: MapRepository, tree_size: int) -> tuple[MapVersion, list[NodeWrite]]:
    """The map of the first ``tree_size`` entries built from scratch, in memory, in one pass: the version
    (not stored) and every node of it."""
    changes: dict[MapKey, tuple[str, int, int]] = {}
    for at in range(0, tree_size, _READ_CHUNK):
        map_changes(await maps.named(at, min(tree_size, at + _READ_CHUNK)), changes)
    memory = MemoryMap()
    writes = memory.update(changes)
    return MapVersion(tree_size, MapRoot(memory.root), memory.keys, None), writes
