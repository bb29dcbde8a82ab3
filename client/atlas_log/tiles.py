"""C2SP tlog-tiles (https://c2sp.org/tlog-tiles, v0.1.0): paths, tile geometry, and proofs built from tiles.

The tile at level ``L`` and index ``N`` holds up to 256 consecutive hashes of the nodes of height ``8·L``;
level 0 holds leaf hashes. A proof needs only the tiles its nodes fall in: :func:`proof_tiles` says which,
and :class:`TileSource` serves every node of a proof from them, hashing inside a tile where needed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from atlas_log.errors import FormatError
from atlas_log.merkle import HASH_SIZE, Hash, consistency_proof, inclusion_proof, node_hash, subtree_root

__all__ = [
    "TILE_HEIGHT",
    "TILE_WIDTH",
    "TileAddress",
    "TileLevels",
    "TileSource",
    "bundle_path",
    "encode_entry_bundle",
    "node_tile",
    "parse_entry_bundle",
    "parse_tile_path",
    "proof_tiles",
    "tile_index_path",
    "tile_path",
    "tile_width",
]

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
MAX_LEVEL = 63


@dataclass(frozen=True, slots=True, order=True)
class TileAddress:
    """A tile: ``level`` (``None`` for an entry bundle), ``index`` and ``width`` (1..256)."""

    level: int | None
    index: int
    width: int = TILE_WIDTH

    @property
    def full(self) -> bool:
        return self.width == TILE_WIDTH

    def path(self) -> str:
        return (
            bundle_path(self.index, self.width) if self.level is None else tile_path(self.level, self.index, self.width)
        )


def tile_index_path(n: int) -> str:
    """tlog-tiles §Paths: ``1234067`` → ``x001/x234/067``; every element but the last starts with ``x``."""
    if n < 0:
        raise ValueError("tile index must be non-negative")
    s = f"{n % 1000:03d}"
    n //= 1000
    while n:
        s = f"x{n % 1000:03d}/{s}"
        n //= 1000
    return s


def _width_suffix(width: int) -> str:
    if not 1 <= width <= TILE_WIDTH:
        raise ValueError(f"tile width {width} out of range 1..256")
    return "" if width == TILE_WIDTH else f".p/{width}"


def tile_path(level: int, index: int, width: int = TILE_WIDTH) -> str:
    """``tile/<L>/<N>[.p/<W>]``."""
    if not 0 <= level <= MAX_LEVEL:
        raise ValueError(f"tile level {level} out of range 0..63")
    return f"tile/{level}/{tile_index_path(index)}{_width_suffix(width)}"


def bundle_path(index: int, width: int = TILE_WIDTH) -> str:
    """``tile/entries/<N>[.p/<W>]``."""
    return f"tile/entries/{tile_index_path(index)}{_width_suffix(width)}"


_PATH = re.compile(r"\Atile/(entries|0|[1-9][0-9]?)/((?:x[0-9]{3}/)*[0-9]{3})(?:\.p/([1-9][0-9]{0,2}))?\Z")


def parse_tile_path(path: str) -> TileAddress:
    """Parse a tile or entry-bundle path strictly; raise :class:`FormatError` otherwise."""
    m = _PATH.match(path)
    if not m:
        raise FormatError(f"not a tile path: {path!r}")
    level_s, index_s, width_s = m.groups()
    level = None if level_s == "entries" else int(level_s)
    if level is not None and level > MAX_LEVEL:
        raise FormatError(f"tile level {level} out of range 0..63")
    elements = index_s.split("/")
    if len(elements) > 1 and elements[0] == "x000":
        raise FormatError("tile index has a leading zero element")
    index = int("".join(e.lstrip("x") for e in elements))
    width = TILE_WIDTH
    if width_s is not None:
        width = int(width_s)
        if width >= TILE_WIDTH:
            raise FormatError("partial tile width must be 1..255")
    return TileAddress(level, index, width)


def tile_width(level: int, index: int, size: int) -> int:
    """The width of tile ``(level, index)`` in a tree of ``size`` leaves; 0 if it does not exist yet."""
    entries = size >> (TILE_HEIGHT * level)  # nodes of height 8·level
    return max(0, min(TILE_WIDTH, entries - index * TILE_WIDTH))


def encode_entry_bundle(leaves: Sequence[bytes]) -> bytes:
    """An entry bundle (C2SP tlog-tiles): each entry prefixed by its length as a big-endian uint16."""
    return b"".join(len(leaf).to_bytes(2, "big") + leaf for leaf in leaves)


def parse_entry_bundle(data: bytes) -> list[bytes]:
    """Split an entry bundle: big-endian uint16 length-prefixed entries."""
    out, i = [], 0
    while i < len(data):
        if i + 2 > len(data):
            raise FormatError("entry bundle truncated in a length prefix")
        n = int.from_bytes(data[i : i + 2], "big")
        if i + 2 + n > len(data):
            raise FormatError("entry bundle truncated in an entry")
        out.append(data[i + 2 : i + 2 + n])
        i += 2 + n
    return out


class TileLevels:
    """One tile's hashes and every complete subtree inside it, held in one buffer: :meth:`node` ``(r, pos)``
    is the ``pos``-th node of height ``8L + r``. ``inner`` (every row above the tile's own, bottom row first,
    as :attr:`inner` gives them back) may be passed when it was stored beside the tile: it is then taken as is,
    and nothing is hashed."""

    __slots__ = ("_buf", "_rows", "width")

    def __init__(self, data: bytes, inner: bytes | None = None) -> None:
        if not data or len(data) % HASH_SIZE or len(data) > TILE_WIDTH * HASH_SIZE:
            raise FormatError(f"tile data must be 1..256 hashes, got {len(data)} bytes")
        self.width = len(data) // HASH_SIZE
        counts = [self.width]
        while counts[-1] > 1:
            counts.append(counts[-1] // 2)
        if inner is None:
            row = [data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]
            parts = [bytes(data)]
            while len(row) > 1:
                row = [node_hash(row[i], row[i + 1]) for i in range(0, len(row) - 1, 2)]
                parts.append(b"".join(row))
            buf = b"".join(parts)
        elif len(inner) != sum(counts[1:]) * HASH_SIZE:
            raise FormatError(f"{self.width} hashes have {sum(counts[1:])} inner nodes, got {len(inner)} bytes")
        else:
            buf = bytes(data) + bytes(inner)
        rows, start = [], 0
        for n in counts:
            rows.append((start, n))
            start += n * HASH_SIZE
        self._buf = buf
        self._rows = tuple(rows)

    @property
    def inner(self) -> bytes:
        """Every node above the tile's own row, bottom row first (what the log stores beside a full tile)."""
        return self._buf[self.width * HASH_SIZE :]

    def node(self, r: int, pos: int) -> bytes | None:
        """The ``pos``-th complete node ``r`` levels above the tile's row, or None when the tile has none there."""
        if r >= len(self._rows):
            return None
        start, n = self._rows[r]
        if pos >= n:
            return None
        return self._buf[start + pos * HASH_SIZE : start + (pos + 1) * HASH_SIZE]


def node_tile(height: int, index: int) -> tuple[int, int, int, int]:
    """Where a perfect node lives: (tile level, tile index, height inside the tile, index in that row)."""
    level, r = divmod(height, TILE_HEIGHT)
    first = index << r  # the node's first entry at tile level `level`
    return level, first >> TILE_HEIGHT, r, (first & (TILE_WIDTH - 1)) >> r


def proof_tiles(size: int, *, index: int | None = None, old_size: int | None = None) -> set[TileAddress]:
    """The tiles a proof for a tree of ``size`` needs: inclusion of ``index`` or consistency from ``old_size``.

    A tile is listed with the width it has at ``size``, so partial tiles are the ones the checkpoint of that
    size commits to.
    """
    need: set[TileAddress] = set()

    def record(height: int, node: int) -> bytes:
        level, tindex, _, _ = node_tile(height, node)
        need.add(TileAddress(level, tindex, tile_width(level, tindex, size)))
        return bytes(HASH_SIZE)

    if index is not None:
        inclusion_proof(index, size, record)
    if old_size is not None:
        consistency_proof(old_size, size, record)
    if index is None and old_size is None:
        subtree_root(0, size, record)
    return need


class TileSource:
    """A :data:`~atlas_log.merkle.NodeSource` over tiles of one tree size.

    ``tiles`` maps ``(level, index)`` to :class:`TileLevels` at least as wide as the tree of ``size`` needs
    (a wider, later version of a partial tile is fine: tiles only grow).
    """

    __slots__ = ("size", "tiles")

    def __init__(self, size: int, tiles: Mapping[tuple[int, int], TileLevels]) -> None:
        self.size = size
        self.tiles = tiles

    def __call__(self, height: int, index: int) -> bytes:
        level, tindex, r, pos = node_tile(height, index)
        try:
            t = self.tiles[(level, tindex)]
        except KeyError:
            raise FormatError(f"tile {tile_path(level, tindex)} is missing") from None
        node = t.node(r, pos)
        if node is None:
            raise FormatError(f"tile {tile_path(level, tindex)} is too narrow for node ({height}, {index})")
        return node

    def inclusion_proof(self, index: int) -> list[Hash]:
        return inclusion_proof(index, self.size, self)

    def consistency_proof(self, old_size: int) -> list[Hash]:
        return consistency_proof(old_size, self.size, self)

    def root(self) -> Hash:
        return subtree_root(0, self.size, self)
