"""Static tiles: the log's checkpoint, hash tiles and entry bundles written as plain files (C2SP tlog-tiles
paths), for a static file server, a mirror or a CDN origin that serves nothing else.

A verifier proves inclusion and consistency from these files and the checkpoint alone
(:class:`atlas_log.tile_client.TileClient`). Each run is incremental: full tiles are immutable, so one already
written is skipped; the partial tiles of the current size are written beside the narrower ones (kept: a reader
holding an older checkpoint still finds the tiles it commits to); the checkpoint is written last, atomically,
so a reader never sees a checkpoint whose tiles are not all there yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from atlas_log.files import write_atomic
from atlas_log.merkle import HASH_SIZE
from atlas_log.tiles import TILE_HEIGHT, TILE_WIDTH, bundle_path, encode_entry_bundle, tile_path, tile_width
from atlas_log_server.db.repository import Repository

__all__ = ["Exported", "export_tiles"]

_BATCH = 64  # tiles read from the database at once


@dataclass(frozen=True, slots=True)
class Exported:
    """What a run wrote: the tree size of the checkpoint, and how many tile and bundle files were written (files
    skipped because they were already there are not counted)."""

    size: int
    tiles: int
    bundles: int


async def export_tiles(repo: Repository, folder: Path, note: bytes, size: int) -> Exported:
    """Write the tiles and entry bundles of the tree of ``size`` leaves, then ``note`` (its signed checkpoint)
    as ``folder/checkpoint``."""
    folder.mkdir(parents=True, exist_ok=True)
    tiles = bundles = 0
    level = 0
    while tile_width(level, 0, size):
        count = -(-(size >> (TILE_HEIGHT * level)) // TILE_WIDTH)
        wanted = []
        for index in range(count):
            width = tile_width(level, index, size)
            target = folder / tile_path(level, index, width)
            if width == TILE_WIDTH and target.exists():
                continue  # full tiles never change
            wanted.append((index, width, target))
        for start in range(0, len(wanted), _BATCH):
            chunk = wanted[start : start + _BATCH]
            data = await repo.tiles([(level, index) for index, _, _ in chunk])
            for index, width, target in chunk:
                hashes = data.get((level, index), b"")[: width * HASH_SIZE]
                if len(hashes) != width * HASH_SIZE:
                    raise RuntimeError(f"tile {tile_path(level, index)} holds fewer than {width} hashes")
                target.parent.mkdir(parents=True, exist_ok=True)
                write_atomic(target, hashes, mode=0o644)
                tiles += 1
        level += 1
    for index in range((size + TILE_WIDTH - 1) // TILE_WIDTH):
        width = tile_width(0, index, size)
        target = folder / bundle_path(index, width)
        if width == TILE_WIDTH and target.exists():
            continue
        leaves = await repo.leaves(index * TILE_WIDTH, width)
        if len(leaves) != width:
            raise RuntimeError(f"entries {index * TILE_WIDTH}..{index * TILE_WIDTH + width - 1} are not all readable")
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(target, encode_entry_bundle(leaves), mode=0o644)
        bundles += 1
    write_atomic(folder / "checkpoint", note, mode=0o644)
    return Exported(size, tiles, bundles)
