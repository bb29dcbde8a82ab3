from __future__ import annotations

import hashlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atlas_log import merkle
from atlas_log.errors import FormatError
from atlas_log.tiles import (
    TileAddress,
    TileLevels,
    TileSource,
    bundle_path,
    parse_entry_bundle,
    parse_tile_path,
    proof_tiles,
    tile_index_path,
    tile_path,
    tile_width,
)
from tests import reference


def test_index_paths_from_the_spec() -> None:
    assert tile_index_path(1234067) == "x001/x234/067"
    assert tile_index_path(19669) == "x019/669"
    assert tile_index_path(5) == "005"
    assert tile_path(0, 1234067, 1) == "tile/0/x001/x234/067.p/1"
    assert bundle_path(0, 256) == "tile/entries/000"


@pytest.mark.parametrize("addr", [TileAddress(0, 0), TileAddress(3, 1234067, 7), TileAddress(None, 19669, 255)])
def test_paths_round_trip(addr: TileAddress) -> None:
    assert parse_tile_path(addr.path()) == addr


@pytest.mark.parametrize(
    "path",
    [
        "tile/0/5",
        "tile/0/x000/005",
        "tile/64/000",
        "tile/01/000",
        "tile/0/000.p/256",
        "tile/0/000.p/0",
        "tile/0/000.p/012",
        "tile/0/1000",
        "tile/entries/000.p",
        "tile/0/x1/000",
        "tile/0/000/",
    ],
)
def test_bad_paths_rejected(path: str) -> None:
    with pytest.raises(FormatError):
        parse_tile_path(path)


def test_geometry_of_size_70000() -> None:
    # tlog-tiles: 273 full level-0 tiles and one of width 112; one full level-1 tile and one of width 17;
    # a level-2 tile of width 1.
    size = 70_000
    assert tile_width(0, 272, size) == 256 and tile_width(0, 273, size) == 112 and tile_width(0, 274, size) == 0
    assert tile_width(1, 0, size) == 256 and tile_width(1, 1, size) == 17
    assert tile_width(2, 0, size) == 1 and tile_width(3, 0, size) == 0


def test_bundle_parse() -> None:
    assert parse_entry_bundle(b"\x00\x01a\x00\x00\x00\x02bc") == [b"a", b"", b"bc"]
    for bad in (b"\x00", b"\x00\x05abc"):
        with pytest.raises(FormatError):
            parse_entry_bundle(bad)


class Tree:
    """Tiles of a tree built leaf by leaf with the compact range, as the sequencer does."""

    def __init__(self, n: int) -> None:
        self.leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(n)]
        rows: dict[int, bytearray] = {}
        cr = merkle.CompactRange()

        def on_node(height: int, index: int, digest: bytes) -> None:
            if height % 8 == 0:
                rows.setdefault(height // 8, bytearray()).extend(digest)

        for lh in self.leaves:
            cr.append(lh, on_node)
        self.rows = rows

    def source(self, size: int) -> TileSource:
        tiles = {}
        for addr in proof_tiles(size) | {TileAddress(0, i // 256) for i in range(0, size, 256)}:
            assert addr.level is not None
            data = bytes(self.rows[addr.level][addr.index * 8192 : addr.index * 8192 + addr.width * 32])
            tiles[(addr.level, addr.index)] = TileLevels(data)
        return TileSource(size, tiles)


@pytest.fixture(scope="module")
def small_tree() -> Tree:
    return Tree(1100)


def test_all_sizes_up_to_1000_against_reference(small_tree: Tree) -> None:
    rng = random.Random(1)
    for size in range(1, 1001):
        leaves = small_tree.leaves[:size]
        src = small_tree.source(size)
        root = reference.mth(leaves)
        assert src.root() == root
        for i in {0, size - 1, rng.randrange(size)}:
            assert src.inclusion_proof(i) == reference.path(i, leaves)
        for m in {1, size, rng.randint(1, size)}:
            assert src.consistency_proof(m) == reference.proof(m, leaves)


@pytest.fixture(scope="module")
def big_tree() -> Tree:
    return Tree(1_000_000)


@settings(max_examples=6, deadline=None)
@given(st.data())
def test_random_sizes_up_to_a_million(big_tree: Tree, data: st.DataObject) -> None:
    size = data.draw(st.integers(1, 1_000_000))
    index = data.draw(st.integers(0, size - 1))
    old = data.draw(st.integers(1, size))
    leaves = big_tree.leaves[:size]
    tiles = {}
    need = proof_tiles(size, index=index) | proof_tiles(size, old_size=old) | proof_tiles(size)
    for addr in need:
        assert addr.level is not None
        start = addr.index * 8192
        tiles[(addr.level, addr.index)] = TileLevels(bytes(big_tree.rows[addr.level][start : start + addr.width * 32]))
    src = TileSource(size, tiles)
    root = reference.mth(leaves)
    assert src.root() == root
    assert src.inclusion_proof(index) == reference.path(index, leaves)
    assert src.consistency_proof(old) == reference.proof(old, leaves)
    merkle.verify_inclusion(
        merkle.LeafHash(leaves[index]), index, size, src.inclusion_proof(index), merkle.RootHash(root)
    )


def test_missing_tile_is_a_format_error() -> None:
    with pytest.raises(FormatError):
        TileSource(300, {}).inclusion_proof(3)


def test_tile_levels_reject_ragged_data() -> None:
    for bad in (b"", b"x" * 33, b"x" * 32 * 257):
        with pytest.raises(FormatError):
            TileLevels(bad)
    assert TileLevels(hashlib.sha256(b"a").digest()).width == 1


@pytest.mark.parametrize("width", [1, 2, 3, 100, 255, 256])
def test_tile_levels_from_stored_inner_nodes_hash_nothing(width: int) -> None:
    hashes = [hashlib.sha256(bytes([i])).digest() for i in range(width)]
    hashed = TileLevels(b"".join(hashes))
    stored = TileLevels(b"".join(hashes), hashed.inner)
    for r in range(9):
        for pos in range(257):
            assert stored.node(r, pos) == hashed.node(r, pos)
    # A full tile's top node is the root of its 256 hashes; its inner nodes are 255 hashes.
    if width == 256:
        assert len(hashed.inner) == 255 * 32
        assert stored.node(8, 0) == reference.mth(hashes)
    with pytest.raises(FormatError):
        TileLevels(b"".join(hashes), hashed.inner + bytes(32))
