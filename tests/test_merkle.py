from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atlas_log import merkle
from atlas_log.errors import ProofError, RootMismatchError
from tests import reference
from tests.vectors import vector_files, vectors_dir

INCLUSION = vector_files("merkle", "inclusion")
CONSISTENCY = vector_files("merkle", "consistency")


def _b64(v: str | None) -> bytes:
    return base64.b64decode(v) if v else b""


def _proof(v: list[str] | None) -> list[bytes]:
    return [_b64(p) for p in v or []]


def test_vectors_present() -> None:
    vectors_dir("merkle")
    assert len(INCLUSION) + len(CONSISTENCY) == 196


@pytest.mark.parametrize("path", INCLUSION, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_inclusion_vector(path: Path) -> None:
    v = json.loads(path.read_text())
    args = (
        merkle.LeafHash(_b64(v["leafHash"])),
        v["leafIdx"],
        v["treeSize"],
        _proof(v["proof"]),
        merkle.RootHash(_b64(v["root"])),
    )
    if v["wantErr"]:
        with pytest.raises(ProofError):
            merkle.verify_inclusion(*args)
    else:
        merkle.verify_inclusion(*args)


@pytest.mark.parametrize("path", CONSISTENCY, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_consistency_vector(path: Path) -> None:
    v = json.loads(path.read_text())
    args = (
        v["size1"],
        v["size2"],
        _proof(v["proof"]),
        merkle.RootHash(_b64(v["root1"])),
        merkle.RootHash(_b64(v["root2"])),
    )
    if v["wantErr"]:
        with pytest.raises(ProofError):
            merkle.verify_consistency(*args)
    else:
        merkle.verify_consistency(*args)


def _leaves(n: int) -> list[bytes]:
    return [reference.leaf(i.to_bytes(4, "big")) for i in range(n)]


def _source(leaves: list[bytes]) -> merkle.NodeSource:
    def source(height: int, index: int) -> bytes:
        return reference.mth(leaves[index << height : (index + 1) << height])

    return source


def test_hasher_goldens() -> None:
    # RFC 6962 hasher facts: the empty root, the empty leaf, and one leaf and node.
    assert merkle.EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert merkle.leaf_hash(b"").hex() == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    assert merkle.leaf_hash(b"L123456").hex().startswith("395aa064")
    assert merkle.node_hash(b"N123", b"N456").hex().startswith("aa217fe8")


def test_generated_proofs_match_happy_path_vectors() -> None:
    # The happy-path vectors are over the 8 canonical leaves; regenerate their proofs.
    data = [
        b"",
        b"\x00",
        b"\x10",
        b"\x20\x21",
        b"\x30\x31",
        b"\x40\x41\x42\x43",
        bytes.fromhex("5051525354555657"),
        bytes.fromhex("606162636465666768696a6b6c6d6e6f"),
    ]
    leaves = [reference.leaf(d) for d in data]
    checked = 0
    for path in INCLUSION:
        v = json.loads(path.read_text())
        if path.name != "happy-path.json" or v["treeSize"] > 8:
            continue
        got = merkle.inclusion_proof(v["leafIdx"], v["treeSize"], _source(leaves[: v["treeSize"]]))
        assert got == _proof(v["proof"])
        checked += 1
    for path in CONSISTENCY:
        v = json.loads(path.read_text())
        if path.name != "happy-path.json" or v["size2"] > 8:
            continue
        got = merkle.consistency_proof(v["size1"], v["size2"], _source(leaves[: v["size2"]]))
        assert got == _proof(v["proof"])
        checked += 1
    if INCLUSION:
        assert checked >= 8


@pytest.mark.parametrize("n", range(1, 40))
def test_proofs_against_reference_exhaustive(n: int) -> None:
    leaves = _leaves(n)
    src = _source(leaves)
    root = merkle.RootHash(reference.mth(leaves))
    assert merkle.subtree_root(0, n, src) == root
    for i in range(n):
        p = merkle.inclusion_proof(i, n, src)
        assert p == reference.path(i, leaves)
        merkle.verify_inclusion(merkle.LeafHash(leaves[i]), i, n, p, root)
    for m in range(1, n + 1):
        p = merkle.consistency_proof(m, n, src)
        assert p == reference.proof(m, leaves)
        merkle.verify_consistency(m, n, p, merkle.RootHash(reference.mth(leaves[:m])), root)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 300).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 1), st.integers(0, 10_000))))
def test_every_bit_flip_fails_inclusion(case: tuple[int, int, int]) -> None:
    n, i, bit_seed = case
    leaves = _leaves(n)
    proof = merkle.inclusion_proof(i, n, _source(leaves))
    root = merkle.RootHash(reference.mth(leaves))
    if not proof:
        return
    j = bit_seed % (len(proof) * 256)
    mutated = list(proof)
    h = bytearray(mutated[j // 256])
    h[(j % 256) // 8] ^= 1 << (j % 8)
    mutated[j // 256] = bytes(h)
    with pytest.raises(RootMismatchError):
        merkle.verify_inclusion(merkle.LeafHash(leaves[i]), i, n, mutated, root)
    with pytest.raises(ProofError):
        merkle.verify_inclusion(merkle.LeafHash(leaves[i]), i, n, proof[:-1], root)


@settings(max_examples=200, deadline=None)
@given(st.integers(2, 300).flatmap(lambda n: st.tuples(st.just(n), st.integers(1, n - 1))))
def test_consistency_mutations_fail(case: tuple[int, int]) -> None:
    n, m = case
    leaves = _leaves(n)
    proof = merkle.consistency_proof(m, n, _source(leaves))
    r1, r2 = merkle.RootHash(reference.mth(leaves[:m])), merkle.RootHash(reference.mth(leaves))
    merkle.verify_consistency(m, n, proof, r1, r2)
    with pytest.raises(ProofError):
        merkle.verify_consistency(m, n, [*proof, proof[0]], r1, r2)
    bad = list(proof)
    bad[-1] = bytes(32)
    with pytest.raises(ProofError):
        merkle.verify_consistency(m, n, bad, r1, r2)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 600), st.integers(0, 600))
def test_compact_range_matches_reference(start: int, extra: int) -> None:
    leaves = _leaves(start + extra)
    cr = merkle.CompactRange()
    for lh in leaves[:start]:
        cr.append(lh)
    resumed = merkle.CompactRange(cr.size, cr.hashes)
    seen: dict[tuple[int, int], bytes] = {}
    for lh in leaves[start:]:
        resumed.append(lh, lambda h, i, d: seen.__setitem__((h, i), d))
    assert resumed.root() == reference.mth(leaves)
    for (h, i), d in seen.items():
        assert d == reference.mth(leaves[i << h : (i + 1) << h])
    assert [reference.mth(leaves[i << h : (i + 1) << h]) for h, i, _ in resumed.nodes()] == resumed.hashes


def test_consistency_prefix_root_is_the_root_a_proof_states() -> None:
    """From a consistency proof, the root of the first ``m`` leaves; None when ``m`` is a power of two (the
    proof omits it). A proof of another tree states that tree's prefix root, which is what fork evidence uses."""
    leaves = [reference.leaf(bytes([i])) for i in range(40)]
    other = [*leaves[:3], reference.leaf(b"x"), *leaves[4:]]
    for n in range(2, 40):
        for m in range(1, n):
            for tree in (leaves, other):
                root = merkle.consistency_prefix_root(m, n, reference.proof(m, tree[:n]))
                assert root == (None if m & (m - 1) == 0 else reference.mth(tree[:m])), (m, n)
    with pytest.raises(ProofError):
        merkle.consistency_prefix_root(6, 20, reference.proof(6, leaves[:20])[:-1])
    with pytest.raises(ProofError):
        merkle.consistency_prefix_root(20, 6, [])


def test_inclusion_proofs_together_equal_each_alone() -> None:
    for size in (1, 2, 3, 7, 256, 257, 1000, 1025):
        src = _source(_leaves(size))
        indices = sorted({0, size - 1, size // 2, size // 3})
        together = merkle.inclusion_proofs(indices, size, src)
        assert together == {i: merkle.inclusion_proof(i, size, src) for i in indices}
