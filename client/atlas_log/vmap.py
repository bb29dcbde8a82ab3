"""The verifiable map: every artifact digest the log's entries name, to what closes its history.

The map is a function of the leaves and the fact lists they commit to. An entry names a digest (``alg:hex``,
each algorithm form on its own) when one of its facts (:class:`~atlas_log.intoto.Fact`: subject, material,
alias, component, byproduct, builder dependency, evaluation, deployment) holds it; the leaf lists the subjects
and materials and commits to the whole fact list by its SHA-256 (``index.factsSha256``), whose pre-image
(:func:`~atlas_log.entry.facts_json`) proves the rest: a model's thousands of files would not fit in a leaf.
For every named digest the map holds the index of the newest entry naming it and how many entries name it.
Those two numbers close a history: an answer must hold exactly ``count`` entries naming the digest, the newest
being ``newest``, each proved included (and the back-links chain the linked ones).

Structure (a binary prefix tree over 256-bit keys, after the prefix tree of the IETF key transparency
protocol and the sparse map of transparency-dev's verifiable index):

- ``key = SHA-256(digest)`` (the digest's UTF-8 string, for example ``sha256:ab…``);
- a subtree holding no key hashes to :data:`EMPTY` (32 zero bytes);
- a subtree holding exactly one key is a leaf wherever it stands:
  ``SHA-256(0x00 ‖ key ‖ uint64(newest) ‖ uint64(count))`` (big-endian);
- any other subtree is ``SHA-256(0x01 ‖ left ‖ right)``, the left child holding the keys whose next bit is 0.

So the tree is canonical (its shape is fixed by the key set) and a key's proof is the list of sibling hashes
from the root down to the subtree where it stands alone — or to where the search for an absent key ends, at an
empty subtree or at another key's leaf (non-membership). A log commits the map of its first ``N`` leaves by
appending a map-commitment entry (:class:`MapCommitment`) under a witnessed checkpoint.

Verification (:func:`verify_map_proof`) is pure. Construction works on stored nodes through
:func:`update_steps`, a generator that asks for the nodes it needs level by level, so the same code updates
the server's PostgreSQL map, a monitor's in-memory one (:class:`MemoryMap`) and the tests' reference.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NewType

from atlas_log._encoding import b64decode, b64encode
from atlas_log.errors import FormatError, ProofError

__all__ = [
    "EMPTY",
    "KEY_BITS",
    "MAP_COMMITMENT",
    "MapCommitment",
    "MapKey",
    "MapLeaf",
    "MapProof",
    "MapRoot",
    "MapValue",
    "MemoryMap",
    "NodeWrite",
    "Position",
    "StoredNode",
    "leaf_hash",
    "map_changes",
    "map_key",
    "node_hash",
    "path_positions",
    "position_bytes",
    "prove",
    "update_steps",
    "verify_map_proof",
]

MapKey = NewType("MapKey", bytes)
"""SHA-256 of an artifact digest string: a position in the map."""
MapRoot = NewType("MapRoot", bytes)
"""The root hash of a map."""

KEY_BITS = 256
EMPTY = bytes(32)
MAP_COMMITMENT = "atlas-log/map-commitment/v2"
# The first format keyed only the digests a leaf's back-links name; its commitments stay in a log that made
# them, recognised as commitments but proving nothing.
_MAP_COMMITMENT_V1 = "atlas-log/map-commitment/v1"
_MAX_COUNT = (1 << 53) - 1  # counts and indices travel in JSON: safe integers


def map_key(digest: str) -> MapKey:
    """The map key of an artifact digest (``alg:hex``)."""
    return MapKey(hashlib.sha256(digest.encode("utf-8")).digest())


@dataclass(frozen=True, slots=True)
class MapValue:
    """What closes a digest's history: the newest entry naming it, and how many entries name it."""

    newest: int
    count: int

    def to_json(self) -> dict[str, int]:
        return {"newest": self.newest, "count": self.count}


@dataclass(frozen=True, slots=True)
class MapLeaf:
    """A key standing alone in its subtree, with its value."""

    key: MapKey
    value: MapValue

    def hash(self) -> bytes:
        return leaf_hash(self.key, self.value)


def leaf_hash(key: bytes, value: MapValue) -> bytes:
    """``SHA-256(0x00 ‖ key ‖ uint64(newest) ‖ uint64(count))``."""
    return hashlib.sha256(b"\x00" + key + value.newest.to_bytes(8, "big") + value.count.to_bytes(8, "big")).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 ‖ left ‖ right)``."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _bit(key: bytes, depth: int) -> int:
    return (key[depth >> 3] >> (7 - (depth & 7))) & 1


def _shares_prefix(a: bytes, b: bytes, bits: int) -> bool:
    whole, rest = divmod(bits, 8)
    if a[:whole] != b[:whole]:
        return False
    return rest == 0 or (a[whole] ^ b[whole]) >> (8 - rest) == 0


# ---- proofs -------------------------------------------------------------------------------------------------


def _int(value: Any, what: str, low: int = 0) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= _MAX_COUNT:
        raise FormatError(f"{what} must be an integer from {low} to {_MAX_COUNT}")
    return value


def _key(value: Any, what: str) -> MapKey:
    if not isinstance(value, str) or len(value) != 64 or value.strip("0123456789abcdef"):
        raise FormatError(f"{what} must be 64 lowercase hex digits")
    return MapKey(bytes.fromhex(value))


@dataclass(frozen=True, slots=True)
class MapProof:
    """A key's path: the sibling hashes from the root down (``None`` for an empty subtree) and what stands at
    its end — the key's own leaf, another key's leaf (the key is absent), or nothing (absent)."""

    siblings: tuple[bytes | None, ...]
    leaf: MapLeaf | None

    @classmethod
    def from_json(cls, obj: Any) -> MapProof:
        """Parse ``{"siblings": [base64 | null, ...], "leaf": {"key", "newest", "count"} | null}``."""
        if not isinstance(obj, dict) or set(obj) != {"siblings", "leaf"}:
            raise FormatError("a map proof is an object with exactly 'siblings' and 'leaf'")
        raw, leaf = obj["siblings"], obj["leaf"]
        if not isinstance(raw, list) or len(raw) > KEY_BITS:
            raise FormatError(f"map proof siblings must be a list of at most {KEY_BITS}")
        siblings = tuple(None if s is None else b64decode(s, "map proof sibling") for s in raw)
        if any(s is not None and len(s) != 32 for s in siblings):
            raise FormatError("a map proof sibling must be 32 bytes")
        if leaf is None:
            return cls(siblings, None)
        if not isinstance(leaf, dict) or set(leaf) != {"key", "newest", "count"}:
            raise FormatError("a map proof's leaf is an object with exactly 'key', 'newest' and 'count'")
        value = MapValue(_int(leaf["newest"], "map leaf newest"), _int(leaf["count"], "map leaf count", 1))
        return cls(siblings, MapLeaf(_key(leaf["key"], "map leaf key"), value))

    def to_json(self) -> dict[str, Any]:
        return {
            "siblings": [None if s is None else b64encode(s) for s in self.siblings],
            "leaf": None if self.leaf is None else {"key": self.leaf.key.hex(), **self.leaf.value.to_json()},
        }


def verify_map_proof(root: bytes, key: bytes, proof: MapProof) -> MapValue | None:
    """The value the map with ``root`` holds for ``key``, or None when it holds none; raises
    :class:`ProofError` when the proof does not lead from ``key`` to ``root``.

    Preconditions first: a 32-byte root and key, at most 256 siblings. A leaf at the end must share the key's
    path (its first ``len(siblings)`` bits). A subtree's sibling just above where the path ends may not be
    empty: a canonical tree never keeps a parent over one key or none (a proof claiming so is not of a
    canonical map).
    """
    if len(root) != 32 or len(key) != 32:
        raise ProofError("map root and key must be 32 bytes")
    depth = len(proof.siblings)
    if depth > KEY_BITS:
        raise ProofError(f"a map proof has at most {KEY_BITS} siblings, not {depth}")
    if depth and proof.siblings[-1] is None:
        raise ProofError("the map proof ends beside an empty subtree: not a path in a canonical map")
    if proof.leaf is not None and not _shares_prefix(proof.leaf.key, key, depth):
        raise ProofError("the map proof's leaf is not on the key's path")
    h = EMPTY if proof.leaf is None else proof.leaf.hash()
    for d in range(depth - 1, -1, -1):
        s = proof.siblings[d]
        sibling = EMPTY if s is None else s
        h = node_hash(h, sibling) if _bit(key, d) == 0 else node_hash(sibling, h)
    if not hmac.compare_digest(h, root):
        raise ProofError(f"the map proof leads to root {h.hex()}, not {root.hex()}")
    if proof.leaf is not None and proof.leaf.key == key:
        return proof.leaf.value
    return None


# ---- commitments -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MapCommitment:
    """The log's statement, as one of its own entries, that the map of its first ``tree_size`` leaves has
    ``root`` and ``keys`` keys. Its entry body is ``{"apiVersion": MAP_COMMITMENT, "map": {"keys", "root",
    "treeSize"}}`` (``root`` in lowercase hex), which no submission's body can take the shape of."""

    tree_size: int
    root: MapRoot
    keys: int

    @property
    def entry_id(self) -> bytes:
        """Its entry's ID, which depends only on the tree size: one commitment per size."""
        return hashlib.sha256(b"atlas-log/map-commitment/v2\n%d" % self.tree_size).digest()

    def body(self) -> dict[str, Any]:
        return {
            "apiVersion": MAP_COMMITMENT,
            "map": {"keys": self.keys, "root": self.root.hex(), "treeSize": self.tree_size},
        }

    @classmethod
    def from_body(cls, body: Any) -> MapCommitment:
        """Parse a commitment entry's body strictly; raises :class:`FormatError`."""
        if isinstance(body, dict) and body.get("apiVersion") == _MAP_COMMITMENT_V1:
            raise FormatError(f"a {_MAP_COMMITMENT_V1} commitment is of an earlier map format, which proves nothing")
        if not isinstance(body, dict) or set(body) != {"apiVersion", "map"} or body["apiVersion"] != MAP_COMMITMENT:
            raise FormatError(f"a map commitment's body is exactly {{'apiVersion': {MAP_COMMITMENT!r}, 'map'}}")
        m = body["map"]
        if not isinstance(m, dict) or set(m) != {"keys", "root", "treeSize"}:
            raise FormatError("a map commitment's 'map' is exactly {'keys', 'root', 'treeSize'}")
        return cls(
            _int(m["treeSize"], "map treeSize"), MapRoot(_key(m["root"], "map root")), _int(m["keys"], "map keys")
        )

    @staticmethod
    def is_commitment(body: Any) -> bool:
        """Whether an entry body claims to be a map commitment of this format (then :meth:`from_body` must
        accept it)."""
        return isinstance(body, dict) and body.get("apiVersion") == MAP_COMMITMENT

    @staticmethod
    def is_earlier_format(body: Any) -> bool:
        """Whether an entry body is a commitment of the earlier format, which is not checked and proves nothing."""
        return isinstance(body, dict) and body.get("apiVersion") == _MAP_COMMITMENT_V1


# ---- construction ------------------------------------------------------------------------------------------

Position = tuple[int, int]
"""``(depth, prefix)``: the subtree whose keys begin with the ``depth`` bits of the integer ``prefix``."""

StoredNode = MapLeaf | bytes
"""What a store holds at a position: the leaf of the one key there, or the hash of a subtree of two or more."""


@dataclass(frozen=True, slots=True)
class NodeWrite:
    """A position's new content: ``leaf`` when one key stands there, else None (a subtree of two or more)."""

    depth: int
    prefix: int
    hash: bytes
    leaf: MapLeaf | None


def position_bytes(depth: int, prefix: int) -> bytes:
    """A position as 32 bytes: its prefix bits followed by zeros (with ``depth``, a store's key)."""
    return (prefix << (KEY_BITS - depth)).to_bytes(32, "big") if depth else EMPTY


def map_changes(
    items: Iterable[tuple[int, Iterable[str]]], into: dict[MapKey, tuple[str, int, int]] | None = None
) -> dict[MapKey, tuple[str, int, int]]:
    """From ``(entry index, the distinct digests it names)`` in ascending index order: per key, ``(digest,
    newest index, how many of these entries name it)`` — what :func:`update_steps` adds to the map. With
    ``into``, adds to the changes of the entries before these (and returns it)."""
    out = {} if into is None else into
    for index, digests in items:
        for d in digests:
            k = map_key(d)
            seen = out.get(k)
            out[k] = (d, index, 1 if seen is None else seen[2] + 1)
    return out


@dataclass(slots=True)
class _Work:
    depth: int
    prefix: int
    keys: list[tuple[int, MapKey]]  # (key as an integer, key), sorted, each with a change
    old: StoredNode | None  # what stood here before (None: empty)
    moved: bool  # ``old`` is a leaf pushed down from its parent: it must be written here
    children: tuple[_Work, _Work] | None = None
    hash: bytes = b""


def update_steps(
    changes: Mapping[MapKey, tuple[str, int, int]],
) -> Generator[list[Position], dict[Position, StoredNode], tuple[bytes, int, list[NodeWrite]]]:
    """Add ``changes`` (key → (digest, newest, added count), as :func:`map_changes` gives) to a stored
    map. A generator: it yields the positions it needs (level by level) and is sent what the store holds at
    them (absent: empty); it returns ``(new root, keys added, the positions to write)``. A changed key already
    in the map keeps its count plus the added one and takes the new newest index.
    """
    ordered = sorted((int.from_bytes(k, "big"), k) for k in changes)
    found = yield [(0, 0)]
    root = _Work(0, 0, ordered, found.get((0, 0)), False)
    level = [root]
    writes: list[NodeWrite] = []
    added = 0
    while level:
        wanted: list[Position] = []
        below: list[_Work] = []
        for w in level:
            d = w.depth
            if not w.keys:
                if w.moved and isinstance(w.old, MapLeaf):
                    w.hash = w.old.hash()
                    writes.append(NodeWrite(d, w.prefix, w.hash, w.old))
                else:
                    w.hash = EMPTY if w.old is None else (w.old.hash() if isinstance(w.old, MapLeaf) else w.old)
                continue
            old_leaf = w.old if isinstance(w.old, MapLeaf) else None
            if w.old is None or old_leaf is not None:
                # Empty, or one key: what stands here after the change?
                single = len(w.keys) == 1 and (old_leaf is None or old_leaf.key == w.keys[0][1])
                if single:
                    k = w.keys[0][1]
                    _, newest, count = changes[k]
                    if old_leaf is None:
                        added += 1
                    else:
                        count += old_leaf.value.count
                    leaf = MapLeaf(k, MapValue(newest, count))
                    w.hash = leaf.hash()
                    writes.append(NodeWrite(d, w.prefix, w.hash, leaf))
                    continue
            if d >= KEY_BITS:
                raise ValueError("two keys at full depth: keys must be distinct")
            split = _first_with_bit(w.keys, d)
            kids = []
            for b, part in ((0, w.keys[:split]), (1, w.keys[split:])):
                prefix = (w.prefix << 1) | b
                if w.old is None:
                    kids.append(_Work(d + 1, prefix, part, None, False))
                elif old_leaf is not None:
                    here = _bit(old_leaf.key, d) == b
                    kids.append(_Work(d + 1, prefix, part, old_leaf if here else None, here))
                else:
                    kid = _Work(d + 1, prefix, part, None, False)
                    wanted.append((d + 1, prefix))
                    kids.append(kid)
            w.children = (kids[0], kids[1])
            below.extend(kids)
        if wanted:
            found = yield wanted
            for kid in below:
                if not kid.moved and (kid.depth, kid.prefix) in found:
                    kid.old = found[(kid.depth, kid.prefix)]
        level = below
    _settle(root, writes)
    return root.hash, added, writes


def _first_with_bit(keys: list[tuple[int, MapKey]], depth: int) -> int:
    """Index of the first key whose bit ``depth`` is 1 (the keys are sorted and share their first bits)."""
    shift = KEY_BITS - 1 - depth
    lo, hi = 0, len(keys)
    while lo < hi:
        mid = (lo + hi) // 2
        if (keys[mid][0] >> shift) & 1:
            hi = mid
        else:
            lo = mid + 1
    return lo


def _settle(w: _Work, writes: list[NodeWrite]) -> None:
    """Hash the internal nodes bottom-up (iteratively: a path may be up to 256 levels deep)."""
    stack: list[tuple[_Work, bool]] = [(w, False)]
    while stack:
        node, ready = stack.pop()
        if node.children is None:
            continue
        if not ready:
            stack.append((node, True))
            stack.extend((c, False) for c in node.children)
            continue
        node.hash = node_hash(node.children[0].hash, node.children[1].hash)
        writes.append(NodeWrite(node.depth, node.prefix, node.hash, None))


class MemoryMap:
    """A map held in memory (a dictionary of positions): for monitors replaying a log, rebuilds and tests."""

    def __init__(self) -> None:
        self.nodes: dict[Position, StoredNode] = {}
        self.root: bytes = EMPTY
        self.keys = 0

    def update(self, changes: Mapping[MapKey, tuple[str, int, int]]) -> list[NodeWrite]:
        """Apply ``changes`` (see :func:`update_steps`); returns the positions written (the new root is
        :attr:`root`)."""
        if not changes:
            return []
        steps = update_steps(changes)
        wanted = next(steps)
        try:
            while True:
                wanted = steps.send({p: self.nodes[p] for p in wanted if p in self.nodes})
        except StopIteration as done:
            result: tuple[bytes, int, list[NodeWrite]] = done.value
        root, added, writes = result
        for w in writes:
            self.nodes[(w.depth, w.prefix)] = w.leaf if w.leaf is not None else w.hash
        self.root, self.keys = root, self.keys + added
        return writes

    def prove(self, key: bytes) -> MapProof:
        """The proof for ``key`` (present or absent) in the current map."""
        return prove(self.nodes.get, key)


def path_positions(key: bytes, start: int, stop: int) -> list[Position]:
    """The positions a proof for ``key`` may read at depths ``start`` to ``stop - 1``: the path's and each
    sibling's."""
    k = int.from_bytes(key, "big")
    out: list[Position] = []
    for d in range(start, min(stop, KEY_BITS + 1)):
        prefix = k >> (KEY_BITS - d)
        out.append((d, prefix))
        if d:
            out.append((d, prefix ^ 1))
    return out


def prove(get: Callable[[Position], StoredNode | None], key: bytes) -> MapProof:
    """The proof for ``key`` from a store's nodes (``get`` returns None for an empty position). Reads the
    positions of :func:`path_positions` in order of depth; ``get`` may raise :class:`LookupError` for one it
    has not loaded yet."""
    siblings: list[bytes | None] = []
    depth, prefix = 0, 0
    node = get((0, 0))
    while node is not None and not isinstance(node, MapLeaf):
        b = _bit(key, depth)
        other = get((depth + 1, (prefix << 1) | (1 - b)))
        siblings.append(None if other is None else (other.hash() if isinstance(other, MapLeaf) else other))
        depth, prefix = depth + 1, (prefix << 1) | b
        node = get((depth, prefix))
    return MapProof(tuple(siblings), node)
