"""The verifiable map against a naive reference: the definition, written as plainly as possible, over random
logs; every answer verified, every omission or substitution detected."""

from __future__ import annotations

import contextlib
import hashlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atlas_log.errors import FormatError, ProofError
from atlas_log.vmap import (
    EMPTY,
    MapCommitment,
    MapKey,
    MapLeaf,
    MapProof,
    MapRoot,
    MapValue,
    MemoryMap,
    map_changes,
    map_key,
    verify_map_proof,
)


def _bits(key: bytes) -> str:
    return bin(int.from_bytes(key, "big"))[2:].zfill(256)


def naive_root(values: dict[bytes, MapValue]) -> bytes:
    """The definition: empty -> zeros; one key -> its leaf; else H(0x01 | left | right) split on the next bit."""

    def h(keys: list[bytes], depth: int) -> bytes:
        if not keys:
            return EMPTY
        if len(keys) == 1:
            v = values[keys[0]]
            return hashlib.sha256(b"\x00" + keys[0] + v.newest.to_bytes(8, "big") + v.count.to_bytes(8, "big")).digest()
        left = [k for k in keys if _bits(k)[depth] == "0"]
        right = [k for k in keys if _bits(k)[depth] == "1"]
        return hashlib.sha256(b"\x01" + h(left, depth + 1) + h(right, depth + 1)).digest()

    return h(sorted(values), 0)


def naive_values(log: list[list[str]]) -> dict[bytes, MapValue]:
    """Per digest: the newest leaf linking it and how many do, by brute force."""
    out: dict[bytes, MapValue] = {}
    for digest in {d for links in log for d in links}:
        indices = [i for i, links in enumerate(log) if digest in links]
        out[hashlib.sha256(digest.encode()).digest()] = MapValue(max(indices), len(indices))
    return out


digests = st.sampled_from([f"sha256:{hashlib.sha256(str(i).encode()).hexdigest()}" for i in range(40)])
logs = st.lists(st.lists(digests, max_size=4, unique=True), max_size=40)


@settings(max_examples=150, deadline=None)
@given(logs, st.lists(st.integers(1, 12), max_size=8), st.randoms(use_true_random=False))
def test_incremental_map_equals_the_definition_and_proves_every_key(
    log: list[list[str]], cuts: list[int], rnd: random.Random
) -> None:
    m = MemoryMap()
    start = 0
    for size in [*sorted({min(c * 4, len(log)) for c in cuts}), len(log)]:
        if size <= start:
            continue
        m.update(map_changes((i, log[i]) for i in range(start, size)))
        start = size
        values = naive_values(log[:size])
        assert m.root == naive_root(values)
        assert m.keys == len(values)
        for key, value in values.items():
            assert verify_map_proof(m.root, key, m.prove(key)) == value
        for n in range(3):
            absent = hashlib.sha256(b"absent %d" % n).digest()
            assert verify_map_proof(m.root, absent, m.prove(absent)) is None
        # Substitution and omission: another count, another newest, or "never seen" for a present key.
        if values:
            key = rnd.choice(sorted(values))
            proof = m.prove(key)
            assert proof.leaf is not None
            for wrong in (
                MapValue(proof.leaf.value.newest, proof.leaf.value.count + 1),
                MapValue(proof.leaf.value.newest + 1, proof.leaf.value.count),
            ):
                with pytest.raises(ProofError):
                    verify_map_proof(m.root, key, MapProof(proof.siblings, MapLeaf(MapKey(key), wrong)))
            with pytest.raises(ProofError):
                verify_map_proof(m.root, key, MapProof(proof.siblings, None))
            if proof.siblings:
                with pytest.raises(ProofError):
                    verify_map_proof(m.root, key, MapProof(proof.siblings[:-1], proof.leaf))


def test_a_present_key_cannot_be_proved_absent_by_another_keys_leaf() -> None:
    m = MemoryMap()
    names = [f"sha256:{i:064x}" for i in range(200)]
    m.update(map_changes((i, [d]) for i, d in enumerate(names)))
    target = map_key(names[7])
    for other in names:
        proof = m.prove(map_key(other))
        if other != names[7] and proof.leaf is not None:
            # Another key's genuine leaf and path: it verifies only for keys on that path, and never makes the
            # target absent.
            with contextlib.suppress(ProofError):
                assert verify_map_proof(m.root, target, proof) is not None


def test_the_empty_map_proves_every_key_absent_and_nothing_present() -> None:
    m = MemoryMap()
    key = map_key("sha256:" + "0" * 64)
    assert verify_map_proof(EMPTY, key, m.prove(key)) is None
    with pytest.raises(ProofError):
        verify_map_proof(EMPTY, key, MapProof((), MapLeaf(key, MapValue(0, 1))))


def test_a_proof_ending_beside_an_empty_subtree_is_refused() -> None:
    key = map_key("sha256:" + "1" * 64)
    leaf = MapLeaf(key, MapValue(3, 1))
    # A parent over a single key is not canonical: the log could otherwise show a key at several depths.
    root = hashlib.sha256(b"\x01" + (leaf.hash() + EMPTY if key[0] < 128 else EMPTY + leaf.hash())).digest()
    with pytest.raises(ProofError, match="empty subtree"):
        verify_map_proof(root, key, MapProof((None,), leaf))


def test_proof_json_round_trip_and_strict_parse() -> None:
    m = MemoryMap()
    m.update(map_changes([(0, ["sha256:" + "a" * 64, "sha512:" + "b" * 128]), (1, ["sha256:" + "a" * 64])]))
    key = map_key("sha256:" + "a" * 64)
    proof = m.prove(key)
    assert MapProof.from_json(proof.to_json()) == proof
    assert verify_map_proof(m.root, key, MapProof.from_json(proof.to_json())) == MapValue(1, 2)
    for bad in (
        {},
        {"siblings": "x", "leaf": None},
        {"siblings": [None] * 257, "leaf": None},
        {"siblings": ["AAAA"], "leaf": None},
        {"siblings": [], "leaf": {"key": "A" * 64, "newest": 1, "count": 1}},
        {"siblings": [], "leaf": {"key": "a" * 64, "newest": -1, "count": 1}},
        {"siblings": [], "leaf": {"key": "a" * 64, "newest": 1, "count": 0}},
        {"siblings": [], "leaf": {"key": "a" * 64, "newest": True, "count": 1}},
        {"siblings": [], "leaf": None, "extra": 1},
    ):
        with pytest.raises(FormatError):
            MapProof.from_json(bad)


def test_commitment_body_round_trip_and_strict_parse() -> None:
    c = MapCommitment(12, MapRoot(bytes(range(32))), 5)
    assert MapCommitment.from_body(c.body()) == c
    assert MapCommitment.is_commitment(c.body())
    body = c.body()
    for bad in (
        {**body, "extra": 1},
        {"apiVersion": "atlas-log/v1", "map": body["map"]},
        {**body, "map": {**body["map"], "root": "00"}},
        {**body, "map": {**body["map"], "treeSize": -1}},
        {**body, "map": {"root": body["map"]["root"], "treeSize": 1}},
    ):
        with pytest.raises(FormatError):
            MapCommitment.from_body(bad)


def test_no_submission_takes_the_shape_of_a_map_commitment() -> None:
    """A commitment's body names its own apiVersion; every submitted entry's body is ``atlas-log/v1``, and a
    submission asking for the commitment's version is refused before any body is built."""
    import time

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from atlas_log.entry import build_body, index_summary
    from atlas_log.errors import SubmissionError
    from atlas_log.submission import parse_submission
    from atlas_log.testing.demo import demo_submission
    from atlas_log.vmap import MAP_COMMITMENT, MapCommitment

    sub = demo_submission(Ed25519PrivateKey.generate(), 0)
    parsed = parse_submission(sub, int(time.time()))
    body = build_body(parsed.envelope, parsed.signers, None, index_summary(parsed.extraction))
    assert body["apiVersion"] != MAP_COMMITMENT and not MapCommitment.is_commitment(body)
    with pytest.raises(SubmissionError, match="apiVersion"):
        parse_submission({**sub, "apiVersion": MAP_COMMITMENT}, int(time.time()))


def test_a_commitment_of_the_earlier_format_is_recognised_but_proves_nothing() -> None:
    """A log that committed its map in the first format (keyed by back-links only) keeps those entries: a
    monitor passes them as the log's own, and no reader takes completeness from them."""
    from atlas_log.entry import canonical_json, encode_leaf
    from atlas_log.reverify import Trust, check_entry

    body = {"apiVersion": "atlas-log/map-commitment/v1", "map": {"keys": 1, "root": "00" * 32, "treeSize": 1}}
    assert MapCommitment.is_earlier_format(body) and not MapCommitment.is_commitment(body)
    with pytest.raises(FormatError, match="earlier map format"):
        MapCommitment.from_body(body)
    checked = check_entry(1, encode_leaf(canonical_json(body), 1, {}), b"{}", lambda d: None, Trust())
    assert checked.problem is None and checked.commitment is None
