"""The witness's durable state: the last checkpoint it cosigned for each log, one file per origin.

Writes are atomic (temporary file, fsync, rename, fsync of the folder), so a crash leaves either the old state
or the new one, never a torn file; the per-origin lock makes the old-size check and the update one step.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from atlas_log._encoding import b64decode, b64encode
from atlas_log.files import write_atomic
from atlas_log.merkle import EMPTY_ROOT, RootHash


@dataclass(frozen=True, slots=True)
class Witnessed:
    size: int
    root: RootHash
    checkpoint: bytes  # the note as cosigned (log signature included)


class WitnessState:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._locks: dict[str, asyncio.Lock] = {}

    def lock(self, origin: str) -> asyncio.Lock:
        return self._locks.setdefault(origin, asyncio.Lock())

    def _path(self, origin: str) -> Path:
        return self.folder / (hashlib.sha256(origin.encode()).hexdigest() + ".json")

    def get(self, origin: str) -> Witnessed:
        """The last cosigned state for ``origin``; size 0 with the empty root if none."""
        path = self._path(origin)
        if not path.exists():
            return Witnessed(0, EMPTY_ROOT, b"")
        obj = json.loads(path.read_text())
        return Witnessed(obj["size"], RootHash(b64decode(obj["root"])), obj["checkpoint"].encode())

    def put(self, origin: str, state: Witnessed) -> None:
        path = self._path(origin)
        data = json.dumps(
            {
                "origin": origin,
                "size": state.size,
                "root": b64encode(state.root),
                "checkpoint": state.checkpoint.decode(),
            }
        )
        write_atomic(path, data.encode())
