"""RFC 6962 / RFC 9162 Merkle tree hashing, proof verification and proof construction.

Verification (:func:`verify_inclusion`, :func:`verify_consistency`) is pure: hashes, sizes and proofs in,
``None`` or a :class:`~atlas_log.errors.ProofError` out. Each function checks its preconditions first,
in the order its docstring lists them, then the exact proof length, and only then hashes.

Construction (:func:`inclusion_proof`, :func:`consistency_proof`, :func:`subtree_root`) takes a
:class:`NodeSource`: a function returning the hash of a *perfect* subtree, so that the same maths serves
the server's sequencer (nodes from memory), the read path (nodes from tiles) and tests (nodes from a list).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable, Sequence
from typing import NewType

from atlas_log.errors import ProofError, RootMismatchError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "CompactRange",
    "Hash",
    "LeafHash",
    "NodeSource",
    "RootHash",
    "consistency_prefix_root",
    "consistency_proof",
    "inclusion_proof",
    "inclusion_proofs",
    "leaf_hash",
    "node_hash",
    "subtree_root",
    "verify_consistency",
    "verify_inclusion",
]

Hash = NewType("Hash", bytes)
"""Any 32-byte tree node."""
LeafHash = NewType("LeafHash", bytes)
"""``SHA-256(0x00 ‖ leaf)``: what a proof of inclusion starts from."""
RootHash = NewType("RootHash", bytes)
"""The root of a tree of a given size, as a checkpoint states it."""

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"  # RFC 6962 §2.1
NODE_PREFIX = b"\x01"
EMPTY_ROOT = RootHash(hashlib.sha256(b"").digest())

NodeSource = Callable[[int, int], bytes]
"""``source(height, index)`` returns the hash of the perfect subtree covering leaves
``[index * 2**height, (index + 1) * 2**height)``."""

_sha256 = hashlib.sha256


def leaf_hash(data: bytes) -> LeafHash:
    """RFC 6962 §2.1: ``MTH({d}) = SHA-256(0x00 ‖ d)``."""
    return LeafHash(_sha256(LEAF_PREFIX + data).digest())


def node_hash(left: bytes, right: bytes) -> Hash:
    """RFC 6962 §2.1: interior node ``SHA-256(0x01 ‖ left ‖ right)``."""
    return Hash(_sha256(NODE_PREFIX + left + right).digest())


# --- verification ---------------------------------------------------------------------------------


def verify_inclusion(leaf: LeafHash, index: int, size: int, proof: Sequence[bytes], root: RootHash) -> None:
    """Check that ``leaf`` is at ``index`` in the tree of ``size`` leaves whose root is ``root``.

    RFC 9162 §2.1.3.2. Preconditions, checked in this order: ``leaf`` is 32 bytes; ``0 <= index < size``;
    every proof hash is 32 bytes; the proof has exactly the length this (index, size) needs.
    Raises :class:`ProofError` (or :class:`RootMismatchError`) when the proof does not hold.
    """
    if len(leaf) != HASH_SIZE:
        raise ProofError(f"leaf hash must be {HASH_SIZE} bytes, got {len(leaf)}")
    if index < 0 or size < 0:
        raise ProofError(f"index and size must be non-negative: index={index} size={size}")
    if index >= size:
        raise ProofError(f"index is beyond size: {index} >= {size}")
    _check_hash_sizes(proof)
    inner, border = _decompose_inclusion(index, size)
    if len(proof) != inner + border:
        raise ProofError(f"wrong proof size {len(proof)}, want {inner + border}")
    calculated = _root_from_inclusion(leaf, index, size, proof)
    if not hmac.compare_digest(calculated, root):
        raise RootMismatchError(root, calculated)


def verify_consistency(size1: int, size2: int, proof: Sequence[bytes], root1: RootHash, root2: RootHash) -> None:
    """Check that the tree of ``size2`` leaves with ``root2`` extends the one of ``size1`` with ``root1``.

    RFC 9162 §2.1.4.2. Preconditions, checked in this order: ``0 <= size1 <= size2``; ``size1 > 0`` (a
    proof from the empty tree is meaningless); if ``size1 == size2`` the proof is empty and the roots are
    equal; every proof hash is 32 bytes; the proof has exactly the length these sizes need.
    """
    if size1 < 0 or size2 < 0:
        raise ProofError(f"sizes must be non-negative: size1={size1} size2={size2}")
    if size2 < size1:
        raise ProofError(f"size2 ({size2}) < size1 ({size1})")
    if size1 == 0:
        raise ProofError("consistency proof from an empty tree is meaningless")
    if size1 == size2:
        if proof:
            raise ProofError("size1 == size2, but the proof is not empty")
        if not hmac.compare_digest(root1, root2):
            raise RootMismatchError(root1, root2)
        return
    _check_hash_sizes(proof)
    # Strip the levels where the old tree is a complete left subtree: its root is implied, not sent.
    level = _ctz(size1)
    index, size = (size1 - 1) >> level, (size2 - 1) >> level
    inner = (index ^ size).bit_length()
    border = bin(index >> inner).count("1")
    start = 0 if size1 == 1 << level else 1
    if len(proof) != start + inner + border:
        raise ProofError(f"wrong proof size {len(proof)}, want {start + inner + border}")
    seed = root1 if start == 0 else proof[0]
    rest = proof[start:]
    mask = index

    # Old root: hash the seed only with the left siblings; new root: with all siblings.
    old = _chain_inner_right(seed, rest[:inner], mask)
    old = _chain_border_right(old, rest[inner:])
    if not hmac.compare_digest(old, root1):
        raise RootMismatchError(root1, old)
    new = _chain_inner(seed, rest[:inner], mask)
    new = _chain_border_right(new, rest[inner:])
    if not hmac.compare_digest(new, root2):
        raise RootMismatchError(root2, new)


def consistency_prefix_root(size1: int, size2: int, proof: Sequence[bytes]) -> RootHash | None:
    """The root of the first ``size1`` leaves that a consistency proof to ``size2`` leaves states, or None
    when ``size1`` is a power of two (RFC 9162 §2.1.4.2: that root is the verifier's seed, not in the proof).

    Nothing is verified here: the result means something only once :func:`verify_consistency` accepts it
    with the second tree's root. Preconditions as there, with ``0 < size1 < size2``.
    """
    if not 0 < size1 < size2:
        raise ProofError(f"need 0 < size1 < size2, got {size1}, {size2}")
    _check_hash_sizes(proof)
    level = _ctz(size1)
    if size1 == 1 << level:
        return None
    index, size = (size1 - 1) >> level, (size2 - 1) >> level
    inner = (index ^ size).bit_length()
    border = bin(index >> inner).count("1")
    if len(proof) != 1 + inner + border:
        raise ProofError(f"wrong proof size {len(proof)}, want {1 + inner + border}")
    old = _chain_inner_right(proof[0], proof[1 : 1 + inner], index)
    return RootHash(_chain_border_right(old, proof[1 + inner :]))


def _check_hash_sizes(proof: Sequence[bytes]) -> None:
    for i, h in enumerate(proof):
        if len(h) != HASH_SIZE:
            raise ProofError(f"proof hash {i} must be {HASH_SIZE} bytes, got {len(h)}")


def _ctz(x: int) -> int:
    return (x & -x).bit_length() - 1


def _decompose_inclusion(index: int, size: int) -> tuple[int, int]:
    # `inner` levels lie below the point where the paths to `index` and to the last leaf diverge;
    # above it, the proof holds one hash per set bit ("border") of the index.
    inner = (index ^ (size - 1)).bit_length()
    border = bin(index >> inner).count("1")
    return inner, border


def _root_from_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    inner, _ = _decompose_inclusion(index, size)
    r = _chain_inner(leaf, proof[:inner], index)
    return _chain_border_right(r, proof[inner:])


def _chain_inner(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    for i, h in enumerate(proof):
        seed = node_hash(seed, h) if (index >> i) & 1 == 0 else node_hash(h, seed)
    return seed


def _chain_inner_right(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    for i, h in enumerate(proof):
        if (index >> i) & 1:
            seed = node_hash(h, seed)
    return seed


def _chain_border_right(seed: bytes, proof: Sequence[bytes]) -> bytes:
    for h in proof:
        seed = node_hash(h, seed)
    return seed


# --- construction ---------------------------------------------------------------------------------


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (``n >= 2``): RFC 6962 §2.1's ``k``."""
    return 1 << ((n - 1).bit_length() - 1)


def subtree_root(lo: int, hi: int, source: NodeSource) -> Hash:
    """``MTH(D[lo:hi])`` for any range that lies on the tree's left-aligned decomposition.

    Perfect, aligned ranges come straight from ``source``; others are split per RFC 6962 §2.1.
    """
    n = hi - lo
    if n <= 0:
        raise ValueError(f"empty range [{lo}, {hi})")
    if n & (n - 1) == 0 and lo % n == 0:
        height = n.bit_length() - 1
        return Hash(source(height, lo >> height))
    k = _split(n)
    return node_hash(subtree_root(lo, lo + k, source), subtree_root(lo + k, hi, source))


def inclusion_proof(index: int, size: int, source: NodeSource) -> list[Hash]:
    """RFC 6962 §2.1.1 ``PATH(index, D[size])``, leaf-side sibling first."""
    return _path(index, size, lambda lo, hi: subtree_root(lo, hi, source))


def inclusion_proofs(indices: Iterable[int], size: int, source: NodeSource) -> dict[int, list[Hash]]:
    """:func:`inclusion_proof` of each index in one tree, every subtree hashed once (the proofs of many
    entries share the tree's ragged right edge)."""
    memo: dict[tuple[int, int], Hash] = {}

    def root(lo: int, hi: int) -> Hash:
        found = memo.get((lo, hi))
        if found is None:
            found = memo[(lo, hi)] = subtree_root(lo, hi, source)
        return found

    return {index: _path(index, size, root) for index in indices}


def _path(index: int, size: int, root: Callable[[int, int], Hash]) -> list[Hash]:
    if not 0 <= index < size:
        raise ValueError(f"index {index} out of range for size {size}")
    path: list[Hash] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            path.append(root(lo + k, hi))
            hi = lo + k
        else:
            path.append(root(lo, lo + k))
            lo += k
    path.reverse()
    return path


def consistency_proof(size1: int, size2: int, source: NodeSource) -> list[Hash]:
    """RFC 6962 §2.1.2 ``PROOF(size1, D[size2])``; empty when the sizes are equal."""
    if not 0 < size1 <= size2:
        raise ValueError(f"need 0 < size1 <= size2, got {size1}, {size2}")
    proof: list[Hash] = []
    lo, hi, complete = 0, size2, True
    while True:
        n, m = hi - lo, size1 - lo
        if m == n:
            if not complete:
                proof.append(subtree_root(lo, hi, source))
            break
        k = _split(n)
        if m <= k:
            proof.append(subtree_root(lo + k, hi, source))
            hi = lo + k
        else:
            proof.append(subtree_root(lo, lo + k, source))
            lo += k
            complete = False
    proof.reverse()
    return proof


class CompactRange:
    """The right edge of a tree: one perfect-subtree hash per set bit of ``size``, largest first.

    This is the "frontier" the sequencer stores: enough to append leaves and compute the new root without
    reading anything else. :meth:`append` reports every node it completes, so a caller can write tiles.
    """

    __slots__ = ("hashes", "size")

    def __init__(self, size: int = 0, hashes: Iterable[bytes] = ()) -> None:
        self.size = size
        self.hashes = list(hashes)
        if len(self.hashes) != bin(size).count("1") or any(len(h) != HASH_SIZE for h in self.hashes):
            raise ValueError(f"a compact range of size {size} needs {bin(size).count('1')} 32-byte hashes")

    def nodes(self) -> list[tuple[int, int, bytes]]:
        """``(height, index, hash)`` for each stored subtree, largest first."""
        out = []
        start = 0
        heights = [h for h in range(self.size.bit_length() - 1, -1, -1) if self.size >> h & 1]
        for height, digest in zip(heights, self.hashes, strict=True):
            out.append((height, start >> height, digest))
            start += 1 << height
        return out

    def append(self, leaf: bytes, on_node: Callable[[int, int, bytes], None] | None = None) -> None:
        """Append one leaf hash; ``on_node(height, index, hash)`` sees the leaf and every node it completes."""
        index, node, height = self.size, leaf, 0
        if on_node is not None:
            on_node(0, index, node)
        # Each trailing one bit of the old size is a left sibling that now completes a larger subtree.
        while index & 1:
            node = _sha256(NODE_PREFIX + self.hashes.pop() + node).digest()
            index >>= 1
            height += 1
            if on_node is not None:
                on_node(height, index, node)
        self.hashes.append(node)
        self.size += 1

    def root(self) -> RootHash:
        """The root of the tree of ``size`` leaves (RFC 6962 ``MTH``)."""
        if not self.hashes:
            return EMPTY_ROOT
        r = self.hashes[-1]
        for h in reversed(self.hashes[:-1]):
            r = _sha256(NODE_PREFIX + h + r).digest()
        return RootHash(r)
