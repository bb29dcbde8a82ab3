"""Verifying an artifact's history as the log answers it (``GET /api/v1/artifacts/{alg}:{hex}/history``).

:func:`verify_history` checks, with no I/O: the checkpoint's signature; every entry's inclusion proof against
that one checkpoint; that each leaf really names the artifact (its body's index summary, or its back-links);
and that the back-link chain has no gap: each entry that links the artifact points at the next older entry
in the answer, and the oldest of a complete answer points at nothing. An entry dropped from the middle of a
history, or a history cut short, is detected.

Verified entries are remembered by (leaf hash, index, checkpoint) in a :class:`HistoryCache`, so repeated or
overlapping verifications skip the hashing they already did.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from atlas_log._encoding import b64decode
from atlas_log.checkpoint import Checkpoint, open_checkpoint
from atlas_log.entry import Entry, parse_leaf
from atlas_log.errors import FormatError, VerificationError
from atlas_log.merkle import leaf_hash, verify_inclusion
from atlas_log.note import Verifier

__all__ = [
    "HistoryCache",
    "VerifiedEntry",
    "VerifiedHistory",
    "VerifiedLineage",
    "verify_history",
    "verify_lineage",
]


@dataclass(frozen=True, slots=True)
class VerifiedEntry:
    log_index: int
    leaf_hash: bytes
    entry: Entry
    roles: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class VerifiedHistory:
    artifact: str
    checkpoint: Checkpoint
    entries: tuple[VerifiedEntry, ...]  # newest first
    complete: bool  # False when the log paginated: older entries exist


class HistoryCache:
    """Bounded memo of entries already verified against a given checkpoint root."""

    def __init__(self, size: int = 100_000) -> None:
        self.size = size
        self._verified: OrderedDict[tuple[bytes, int, int, bytes], Entry] = OrderedDict()
        self.hits = 0

    def get(self, key: tuple[bytes, int, int, bytes]) -> Entry | None:
        entry = self._verified.get(key)
        if entry is not None:
            self._verified.move_to_end(key)
            self.hits += 1
        return entry

    def put(self, key: tuple[bytes, int, int, bytes], entry: Entry) -> None:
        self._verified[key] = entry
        if len(self._verified) > self.size:
            self._verified.popitem(last=False)


def _verified_entries(items: Any, cp: Checkpoint, cache: HistoryCache | None) -> list[VerifiedEntry]:
    """Each item's leaf, included in the checkpoint's tree at its index (proofs verified, or found in the cache)."""
    out = []
    if not isinstance(items, list):
        raise FormatError("entries must be a list")
    for item in items:
        try:
            index, leaf = item["logIndex"], b64decode(item["leaf"], "leaf")
            roles = tuple(item.get("roles", ()))
            lh = leaf_hash(leaf)
            key = (lh, index, cp.size, cp.root_hash)
            entry = cache.get(key) if cache is not None else None
            if entry is None:
                proof = [b64decode(h, "inclusionProof") for h in item["inclusionProof"]]
                verify_inclusion(lh, index, cp.size, proof, cp.root_hash)
                entry = parse_leaf(leaf)
                if cache is not None:
                    cache.put(key, entry)
        except (KeyError, TypeError) as exc:
            raise FormatError(f"malformed entry in the answer: {exc}") from exc
        out.append(VerifiedEntry(index, lh, entry, roles))
    return out


def _said(entry: Entry, key: str) -> list[str]:
    index = entry.body.get("index")
    value = index.get(key) if isinstance(index, dict) else None
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _names(entry: Entry, artifact: str) -> bool:
    said = _said(entry, "subjects") + _said(entry, "materials")
    return artifact in said or (entry.links is not None and artifact in entry.links)


def _open_answer(answer: Any, vkey: str | Verifier, artifact: str | None, what: str) -> tuple[str, Checkpoint]:
    """The artifact an answer is about (it must be the one asked for) and its verified checkpoint."""
    verifier = vkey if isinstance(vkey, Verifier) else Verifier.from_vkey(vkey)
    try:
        name = artifact or answer["artifact"]
        if answer["artifact"] != name:
            raise VerificationError(f"the answer is about {answer['artifact']}, not {name}")
        cp = open_checkpoint(answer["checkpoint"].encode(), verifier)
        if answer["treeSize"] != cp.size:
            raise VerificationError("the answer's treeSize is not its checkpoint's size")
    except (KeyError, TypeError, AttributeError) as exc:
        raise FormatError(f"malformed {what} answer: {exc}") from exc
    return str(name), cp


def verify_history(
    answer: dict[str, Any], vkey: str | Verifier, artifact: str | None = None, *, cache: HistoryCache | None = None
) -> VerifiedHistory:
    """Verify a history answer for ``artifact`` (default: the one the answer names). Raises on any failure."""
    name, cp = _open_answer(answer, vkey, artifact, "history")
    try:
        raw_entries = answer["entries"]
        complete = answer.get("next") is None
    except (KeyError, TypeError, AttributeError) as exc:
        raise FormatError(f"malformed history answer: {exc}") from exc
    verified = _verified_entries(raw_entries, cp, cache)
    # Aliases (other digests of the same artifact) count only when a verified entry names both together.
    claimed = answer.get("aliases") or []
    aliases = {
        a
        for a in claimed
        if isinstance(a, str)
        and any(
            name in _said(v.entry, key) and a in _said(v.entry, key)
            for v in verified
            for key in ("subjects", "materials")
        )
    }
    for v in verified:
        if not (_names(v.entry, name) or any(_names(v.entry, a) for a in aliases)):
            raise VerificationError(f"entry {v.log_index} does not name {name} although the index says it does")
    if any(a.log_index <= b.log_index for a, b in itertools.pairwise(verified)):
        raise VerificationError("history entries are not strictly newest first")
    chain = [v for v in verified if v.entry.links is not None and name in v.entry.links]
    for newer, older in itertools.pairwise(chain):
        assert newer.entry.links is not None
        if newer.entry.links[name] != older.log_index:
            raise VerificationError(
                f"history gap: entry {newer.log_index} links {name} back to {newer.entry.links[name]}, "
                f"but the next entry in the answer is {older.log_index}"
            )
    if chain and complete:
        oldest = chain[-1]
        assert oldest.entry.links is not None
        if oldest.entry.links[name] is not None:
            raise VerificationError(
                f"history gap: the oldest entry {oldest.log_index} links back to {oldest.entry.links[name]}, "
                "which the answer omits"
            )
    return VerifiedHistory(name, cp, tuple(verified), complete)


@dataclass(frozen=True, slots=True)
class VerifiedLineage:
    artifact: str
    direction: str
    checkpoint: Checkpoint
    nodes: tuple[str, ...]
    edges: tuple[tuple[str, str, int], ...]  # (input, output, entry index)
    entries: dict[int, VerifiedEntry]


def verify_lineage(
    answer: dict[str, Any], vkey: str | Verifier, artifact: str | None = None, *, cache: HistoryCache | None = None
) -> VerifiedLineage:
    """Verify a lineage answer: the checkpoint, every entry's inclusion, and that each edge ``input → output``
    is stated by its entry (the input among its materials, the output among its subjects)."""
    name, cp = _open_answer(answer, vkey, artifact, "lineage")
    try:
        edges = tuple((e["from"], e["to"], e["logIndex"]) for e in answer["edges"])
        nodes = tuple(answer["nodes"])
        direction = answer["direction"]
    except (KeyError, TypeError, AttributeError) as exc:
        raise FormatError(f"malformed lineage answer: {exc}") from exc
    entries = {v.log_index: v for v in _verified_entries(answer.get("entries"), cp, cache)}
    for src, dst, idx in edges:
        v = entries.get(idx)
        if v is None:
            raise VerificationError(f"edge {src} -> {dst} cites entry {idx}, which the answer does not prove")
        if src not in _said(v.entry, "materials") or dst not in _said(v.entry, "subjects"):
            raise VerificationError(f"entry {idx} does not state {src} -> {dst}")
        if src not in nodes or dst not in nodes:
            raise VerificationError(f"edge {src} -> {dst} names an artifact missing from the nodes")
    return VerifiedLineage(name, direction, cp, nodes, edges, entries)
