"""Verifying an artifact's history as the log answers it (``GET /api/v1/artifacts/{alg}:{hex}/history``).

:func:`verify_history` checks, with no I/O: the checkpoint's signature; every entry's inclusion proof against
that one checkpoint; that each leaf really names the artifact (its body's index summary, its back-links, or the
fact list the answer carries beside it, which the leaf commits to);
and that the back-link chains have no gap: for the artifact and each proven alias, each entry that links it
points at the next older entry in the answer, across pages (``after=``), and once the log says there are no
older pages the oldest points at nothing. An entry dropped from the middle of a history, between two pages, or
a history cut short, is detected.

Back-links alone cannot show that no entry *newer* than the newest one returned names the artifact: a log can
withhold its newest entries. The first page therefore carries a completeness proof (``completeness``): the
newest map commitment in the answer's tree (an entry of the log, with its inclusion proof) and, for the artifact
and each alias, a proof from the committed map (:mod:`atlas_log.vmap`) of the newest entry naming it below
the committed size and how many do. Once every page is verified, the entries naming each digest below that
size must be exactly those: then ``complete`` is True, as of ``complete_as_of`` (entries after the committed
size are shown and chained, but a log may still withhold some of them). A history without that proof reports
what it proved, ``gap_free_from`` (the newest index from which it is gap-free back to the first entry naming
the artifact), and ``complete`` stays False with the reason in ``incomplete``.

Verified entries are remembered by (leaf as served, index, checkpoint) in a :class:`HistoryCache`, so repeated or
overlapping verifications skip the hashing they already did.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from atlas_log._encoding import b64decode
from atlas_log.checkpoint import Checkpoint, open_checkpoint
from atlas_log.entry import Entry, fact_names, parse_leaf
from atlas_log.errors import FormatError, VerificationError
from atlas_log.intoto import TEST_RESULT
from atlas_log.merkle import leaf_hash, verify_inclusion
from atlas_log.note import Verifier
from atlas_log.vmap import MapCommitment, MapProof, MapValue, map_key, verify_map_proof

__all__ = [
    "EVALUATION_DATA",
    "INPUT",
    "Closure",
    "HistoryCache",
    "MapStatus",
    "VerifiedEntry",
    "VerifiedHistory",
    "VerifiedLineage",
    "edge_role",
    "stale_commitment",
    "verify_entries",
    "verify_history",
    "verify_lineage",
    "verify_map_status",
]


def stale_commitment(index: int, newest: int) -> str:
    """Why an answer proved complete against map commitment ``index`` is not called complete by a client that
    saw commitment ``newest`` before: completeness as of a size the log has moved past can hide newer entries."""
    return f"the log answered with an older map commitment (entry {index}) than one it showed before (entry {newest})"


@dataclass(frozen=True, slots=True)
class VerifiedEntry:
    """An entry proved included at ``log_index``; in a history, each of ``roles`` is proved by the leaf up to
    the pairs its summary joins (subject/evaluated, material/eval_data), or exactly by ``facts``: the ``(digest,
    role, JSON path)`` triples of the fact list the answer carried beside the leaf, proved to be the one the leaf
    commits to (:func:`~atlas_log.entry.fact_names`). A log sends it for entries naming an artifact only in
    roles the leaf does not list (a model's component files, byproducts, builder dependencies, deployments)."""

    log_index: int
    leaf_hash: bytes
    entry: Entry
    roles: tuple[str, ...]
    facts: frozenset[tuple[str, str, str]] | None = None

    def names(self, digest: str) -> bool:
        """Whether the entry is proved to name ``digest``: in its leaf's summary or back-links, or its facts."""
        return (
            digest in _said(self.entry, "subjects")
            or digest in _said(self.entry, "materials")
            or (self.entry.links is not None and digest in self.entry.links)
            or (self.facts is not None and any(d == digest for d, _, _ in self.facts))
        )


@dataclass(frozen=True, slots=True)
class Closure:
    """A verified completeness proof: the map commitment at ``commitment_index`` (included in the answer's
    checkpoint) and, per digest, what the committed map holds for it (None: no entry below the committed size
    links it)."""

    commitment_index: int
    commitment: MapCommitment
    values: tuple[tuple[str, MapValue | None], ...]


@dataclass(frozen=True, slots=True)
class VerifiedHistory:
    """What :func:`verify_history` proved about an artifact's history (all pages verified so far).

    ``entries`` (newest first) are each included in the tree of the checkpoint of the page that carried them;
    ``checkpoint`` is the first (newest) page's. Pages proved against different checkpoints are not proved
    consistent with each other here: a client fetching them proves each page's checkpoint consistent with its
    trusted state (:meth:`~atlas_log.client.LogClient.prove_consistent`).
    ``next_before`` is the cursor of the next (older) page, or None when the log says there is none.
    ``links`` maps the artifact and each proven alias to the index the next older entry naming it must have
    (None: the chain reached the first entry naming it); :func:`verify_history` uses it to chain pages.
    """

    artifact: str
    checkpoint: Checkpoint
    entries: tuple[VerifiedEntry, ...]  # newest first
    aliases: frozenset[str]
    next_before: int | None
    links: tuple[tuple[str, int | None], ...]
    reaches_first: bool  # no older page, and every entry and back-link chain ends at the first entry
    closure: Closure | None = None
    served: tuple[Mapping[str, Any], ...] = ()  # the pages as the log served them (an evidence pack keeps them)
    superseded: int | None = None  # a newer map commitment than the closure's, seen by the client before

    @property
    def incomplete(self) -> str | None:
        """Why the history is not proved complete, or None when it is."""
        if self.closure is None:
            return "the log gave no completeness proof (it keeps no verifiable map, or has not committed one yet)"
        if self.superseded is not None and self.closure.commitment_index < self.superseded:
            return stale_commitment(self.closure.commitment_index, self.superseded)
        if self.next_before is not None:
            return "older pages remain"
        missing = {self.artifact, *self.aliases} - {d for d, _ in self.closure.values}
        if missing:
            return f"no map proof for {min(missing)}"
        return None

    @property
    def complete(self) -> bool:
        """Whether these are all the entries naming the artifact (and its proven aliases) below
        :attr:`complete_as_of`: the committed map's newest entry and count were each met."""
        return self.incomplete is None

    @property
    def complete_as_of(self) -> int | None:
        """The tree size the history is proved complete as of (the committed map's), or None."""
        return self.closure.commitment.tree_size if self.complete and self.closure is not None else None

    @property
    def gap_free_from(self) -> int | None:
        """The newest index from which the history is proved gap-free back to the first entry naming the
        artifact, or None when that was not proved (older pages remain, or an entry carries no back-links)."""
        return self.entries[0].log_index if self.reaches_first and self.entries else None

    @property
    def tree_size(self) -> int:
        """The size of the tree the first page was proved against: entries newer than ``entries[0]`` below it
        are not excluded (see :attr:`complete`)."""
        return self.checkpoint.size


class HistoryCache:
    """Bounded memo of entries already verified against a given checkpoint root, keyed by the leaf exactly as
    served (its base64 text), its index and the checkpoint: a hit skips decoding, hashing and the proof, since
    one text decodes to one leaf."""

    def __init__(self, size: int = 100_000) -> None:
        self.size = size
        self._verified: OrderedDict[tuple[str, int, int, bytes], tuple[bytes, Entry]] = OrderedDict()
        self.hits = 0

    def get(self, key: tuple[str, int, int, bytes]) -> tuple[bytes, Entry] | None:
        found = self._verified.get(key)
        if found is not None:
            self._verified.move_to_end(key)
            self.hits += 1
        return found

    def put(self, key: tuple[str, int, int, bytes], verified: tuple[bytes, Entry]) -> None:
        self._verified[key] = verified
        if len(self._verified) > self.size:
            self._verified.popitem(last=False)


def verify_entries(items: Any, cp: Checkpoint, cache: HistoryCache | None) -> list[VerifiedEntry]:
    """Each item's leaf, included in the checkpoint's tree at its index (proofs verified, or found in the cache)."""
    out = []
    if not isinstance(items, list):
        raise FormatError("entries must be a list")
    for item in items:
        try:
            index, text = item["logIndex"], item["leaf"]
            roles = tuple(item.get("roles", ()))
            if not isinstance(index, int) or isinstance(index, bool):
                raise FormatError(f"an entry's logIndex must be an integer, not {index!r}")
            facts_text = item.get("facts")
            key = (text, index, cp.size, cp.root_hash) if isinstance(text, str) else None
            found = cache.get(key) if cache is not None and key is not None else None
            if found is None:
                leaf = b64decode(text, "leaf")
                lh = leaf_hash(leaf)
                proof = [b64decode(h, "inclusionProof") for h in item["inclusionProof"]]
                verify_inclusion(lh, index, cp.size, proof, cp.root_hash)
                found = (lh, parse_leaf(leaf))
                if cache is not None and key is not None:
                    cache.put(key, found)
            facts = None
            if facts_text is not None:
                try:
                    facts = fact_names(found[1].body, b64decode(facts_text, "facts"))
                except VerificationError as exc:
                    raise VerificationError(f"entry {index}: {exc}") from exc
        except (KeyError, TypeError) as exc:
            raise FormatError(f"malformed entry in the answer: {exc}") from exc
        out.append(VerifiedEntry(index, found[0], found[1], roles, facts))
    return out


def _said(entry: Entry, key: str) -> list[str]:
    index = entry.body.get("index")
    value = index.get(key) if isinstance(index, dict) else None
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


# Which of the leaf's index lists proves a role. The leaf's summary joins subject with evaluated and material
# with eval_data, so a role is proved only up to that pair.
_ROLE_LISTS = {"subject": "subjects", "evaluated": "subjects", "material": "materials", "eval_data": "materials"}


def _holds(v: VerifiedEntry, role: str, digests: set[str]) -> bool:
    """Whether the entry names one of ``digests`` in ``role`` (for ``signer``: as a signer key's SHA-256)."""
    entry = v.entry
    if v.facts is not None and any(d in digests and r == role for d, r, _ in v.facts):
        return True
    if role == "signer":
        sigs = entry.body.get("signatures")
        keys = {
            f"sha256:{s['verifier']['spkiSha256']}"
            for s in (sigs if isinstance(sigs, list) else [])
            if isinstance(s, dict) and isinstance(s.get("verifier"), dict) and "spkiSha256" in s["verifier"]
        }
        return bool(keys & digests)
    key = _ROLE_LISTS.get(role)
    return key is not None and bool(set(_said(entry, key)) & digests)


def _together(v: VerifiedEntry, a: str, b: str, key: str) -> bool:
    """Whether the entry names ``a`` and ``b`` in the same leaf list, or (with its facts) as the digests of one
    descriptor (one JSON path): two files of one model are not aliases of each other."""
    if a in _said(v.entry, key) and b in _said(v.entry, key):
        return True
    paths = {p for d, _, p in v.facts or () if d == a}
    return any(d == b and p in paths for d, _, p in v.facts or ())


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
    answer: dict[str, Any],
    vkey: str | Verifier,
    artifact: str | None = None,
    *,
    cache: HistoryCache | None = None,
    after: VerifiedHistory | None = None,
) -> VerifiedHistory:
    """Verify a history answer for ``artifact`` (default: the one the answer names). Raises on any failure.

    With ``after`` (the result for the previous, newer pages) the answer must be the page that follows it
    (asked with ``before=after.next_before``): about the same artifact, strictly older, and joined to it by the
    back-links of the artifact and of every proven alias. The result then holds all pages so far.
    """
    name, cp = _open_answer(answer, vkey, artifact if after is None else after.artifact, "history")
    try:
        raw_entries = answer["entries"]
        next_before = answer.get("next")
        claimed = answer.get("aliases") or []
    except (KeyError, TypeError, AttributeError) as exc:
        raise FormatError(f"malformed history answer: {exc}") from exc
    verified = verify_entries(raw_entries, cp, cache)
    closure = after.closure if after is not None else _closure(answer.get("completeness"), cp, cache, name)
    if next_before is not None and (
        not isinstance(next_before, int)
        or isinstance(next_before, bool)
        or not verified
        or next_before != verified[-1].log_index
    ):
        raise VerificationError(f"the answer's next cursor {next_before!r} is not the index of its oldest entry")
    if after is not None:
        if after.next_before is None:
            raise VerificationError("the previous page said there were no older entries")
        if verified and verified[0].log_index >= after.next_before:
            raise VerificationError(
                f"the page is not older than the previous one: it starts at {verified[0].log_index}, "
                f"which is not below {after.next_before}"
            )
    # Aliases (other digests of the same artifact) count only when a verified entry names both together.
    previous = after.entries if after is not None else ()
    aliases = set(after.aliases if after is not None else ()) | {
        a
        for a in claimed
        if isinstance(a, str)
        and any(
            _together(v, name, a, key) for v in itertools.chain(previous, verified) for key in ("subjects", "materials")
        )
    }
    for v in verified:
        if not (v.names(name) or any(v.names(a) for a in aliases)):
            raise VerificationError(f"entry {v.log_index} does not name {name} although the index says it does")
        if not all(isinstance(r, str) for r in v.roles):
            raise FormatError(f"entry {v.log_index}: roles must be strings")
        for role in v.roles:
            if not _holds(v, role, {name, *aliases}):
                raise VerificationError(f"entry {v.log_index} does not name {name} in the role {role!r} claimed")
    if any(a.log_index <= b.log_index for a, b in itertools.pairwise(verified)):
        raise VerificationError("history entries are not strictly newest first")
    links = _follow_links(verified, [name, *sorted(aliases)], dict(after.links) if after is not None else {})
    if next_before is None:
        for digest, older in links.items():
            if older is not None:
                raise VerificationError(
                    f"history gap: the oldest entry naming {digest} links back to entry {older}, which the answer omits"
                )
    everything = (*previous, *verified)
    if closure is not None:
        _check_closure(closure, everything, {name, *aliases}, last_page=next_before is None)
    # Gap-freeness rests on the back-links: an entry without one (an older format) leaves it unproved.
    linked = all(v.entry.links is not None and any(d in v.entry.links for d in links) for v in everything)
    return VerifiedHistory(
        name,
        cp if after is None else after.checkpoint,
        everything,
        frozenset(aliases),
        next_before,
        tuple(sorted(links.items())),
        next_before is None and linked,
        closure,
        (*(after.served if after is not None else ()), answer),
    )


def _closure(raw: Any, cp: Checkpoint, cache: HistoryCache | None, artifact: str) -> Closure | None:
    """Verify a completeness proof against the answer's checkpoint: the commitment entry's inclusion, its body,
    and each digest's map proof. None when the answer carries none."""
    if raw is None:
        return None
    try:
        item, proofs = raw["commitment"], raw["proofs"]
        if not isinstance(proofs, dict):
            raise TypeError("proofs must be an object")
        parsed = {d: MapProof.from_json(p) for d, p in proofs.items()}
    except (KeyError, TypeError) as exc:
        raise FormatError(f"malformed completeness proof: {exc}") from exc
    index, commitment = _commitment(item, cp, cache)
    if artifact not in parsed:
        raise VerificationError(f"the completeness proof has no map proof for {artifact}")
    values = tuple((d, verify_map_proof(commitment.root, map_key(d), p)) for d, p in sorted(parsed.items()))
    return Closure(index, commitment, values)


def _commitment(item: Any, cp: Checkpoint, cache: HistoryCache | None) -> tuple[int, MapCommitment]:
    """A map commitment entry (``{"logIndex", "leaf", "inclusionProof"}``) proved included in ``cp``: its index
    and the commitment its body holds, which covers only leaves before it."""
    (entry,) = verify_entries([item], cp, cache)
    try:
        commitment = MapCommitment.from_body(entry.entry.body)
    except FormatError as exc:
        raise VerificationError(f"entry {entry.log_index}, given as the map commitment, is not one: {exc}") from exc
    if commitment.tree_size > entry.log_index:
        raise VerificationError(
            f"the map commitment at entry {entry.log_index} claims to cover {commitment.tree_size} leaves: "
            "a commitment covers only leaves before it"
        )
    return entry.log_index, commitment


@dataclass(frozen=True, slots=True)
class MapStatus:
    """The newest map commitment in ``checkpoint``'s tree, as the log names it (``GET /api/v1/map``), proved
    included; both None when the log names none (it keeps no map, or has not committed one yet). That it is the
    *newest* is the log's word: a monitor uses it to see that commitments keep coming, which a log cannot fake
    without committing."""

    checkpoint: Checkpoint
    commitment_index: int | None
    commitment: MapCommitment | None


def verify_map_status(answer: Any, vkey: str | Verifier, cache: HistoryCache | None = None) -> MapStatus:
    """Verify a ``GET /api/v1/map`` answer: its checkpoint, and the named commitment's inclusion and body."""
    verifier = vkey if isinstance(vkey, Verifier) else Verifier.from_vkey(vkey)
    try:
        cp = open_checkpoint(answer["checkpoint"].encode(), verifier)
        if answer["treeSize"] != cp.size:
            raise VerificationError("the answer's treeSize is not its checkpoint's size")
        item = answer["commitment"]
    except (KeyError, TypeError, AttributeError) as exc:
        raise FormatError(f"malformed map answer: {exc}") from exc
    if item is None:
        return MapStatus(cp, None, None)
    index, commitment = _commitment(item, cp, cache)
    return MapStatus(cp, index, commitment)


def _check_closure(closure: Closure, entries: tuple[VerifiedEntry, ...], digests: set[str], *, last_page: bool) -> None:
    """The entries (newest first, all pages so far) against the committed map: below the committed size, the
    first entry naming each digest is the map's newest, and there are as many as the map counts (checked in
    full once the last page is in), for the artifact and its proven aliases. Raises naming what the log hid."""
    size = closure.commitment.tree_size
    for digest, value in closure.values:
        if digest not in digests:  # not an artifact of this history: its entries are not in the answer
            continue
        below = [v.log_index for v in entries if v.log_index < size and v.names(digest)]
        if value is None:
            if below:
                raise VerificationError(
                    f"the committed map says no entry below {size} names {digest}, but entry {below[0]} does"
                )
            continue
        if below and below[0] != value.newest:
            raise VerificationError(
                f"history incomplete: the committed map's newest entry naming {digest} below {size} is "
                f"{value.newest}, but the answer's is {below[0]}"
            )
        if len(below) > value.count or (last_page and len(below) != value.count):
            raise VerificationError(
                f"history incomplete: the committed map counts {value.count} entries naming {digest} below "
                f"{size}; the answer has {len(below)}"
            )


def _follow_links(
    verified: list[VerifiedEntry], digests: list[str], expected: dict[str, int | None]
) -> dict[str, int | None]:
    """Walk the entries (newest first) along each digest's back-links; return, per digest, the index the next
    older entry naming it must have. ``expected`` holds the same from newer pages. Raises on any gap."""
    for v in verified:
        if v.entry.links is None:
            continue
        for digest in digests:
            if digest not in v.entry.links:
                continue
            if digest in expected and expected[digest] != v.log_index:
                want = expected[digest]
                raise VerificationError(
                    f"history gap: the entry naming {digest} before entry {v.log_index} links back to "
                    + ("nothing (it claims to be the first)" if want is None else f"entry {want}")
                    + f", but the next entry in the answer is {v.log_index}"
                )
            expected[digest] = v.entry.links[digest]
    return expected


@dataclass(frozen=True, slots=True)
class VerifiedLineage:
    """What :func:`verify_lineage` proved: every edge is stated by an included entry and reachable from
    ``artifact``. ``truncated`` is the log's own word that it capped the answer (the nearest edges first):
    more lineage exists than is shown. A False ``truncated`` proves nothing by itself; an answer asked with
    ``complete=true`` carries the completeness proof that makes ``complete`` true."""

    artifact: str
    direction: str
    checkpoint: Checkpoint
    nodes: tuple[str, ...]
    edges: tuple[tuple[str, str, int], ...]  # (input, output, entry index)
    entries: dict[int, VerifiedEntry]
    truncated: bool = False
    closure: Closure | None = None
    incomplete: str | None = "the answer carries no completeness proof (ask with complete=true)"
    served: Mapping[str, Any] = field(default_factory=dict)  # the answer as the log served it

    @property
    def complete(self) -> bool:
        """Whether every edge up to the answer's depth stated by an entry below :attr:`complete_as_of` is here:
        each expanded artifact's entries were proved all there (the committed map's newest and count, the
        back-link chain) and every edge they state was found among the answer's."""
        return self.incomplete is None

    @property
    def complete_as_of(self) -> int | None:
        return self.closure.commitment.tree_size if self.complete and self.closure is not None else None

    def role(self, index: int) -> str:
        """What each edge stated by entry ``index`` is: :data:`EVALUATION_DATA` or :data:`INPUT`
        (:func:`edge_role`), from the entry's proved leaf."""
        ix = self.entries[index].entry.body.get("index")
        return edge_role(ix.get("predicateType") if isinstance(ix, dict) else None)


INPUT = "input"
EVALUATION_DATA = "evaluation data"


def edge_role(predicate_type: str | None) -> str:
    """What an edge's source is to its destination in an entry of ``predicate_type``: the data an evaluation (an
    in-toto test-result) was run on, :data:`EVALUATION_DATA`, or an input the output was made from,
    :data:`INPUT`. A model's test data is its evaluation's data, never one of its training inputs."""
    return EVALUATION_DATA if predicate_type == TEST_RESULT else INPUT


def _reachable(artifact: str, direction: str, edges: tuple[tuple[str, str, int], ...]) -> set[tuple[str, str, int]]:
    """The edges reachable from ``artifact``: ``up`` follows edges backwards from outputs to inputs, ``down``
    forwards from inputs to outputs."""
    seen, frontier, reached = {artifact}, [artifact], set()
    by_node: dict[str, list[tuple[str, str, int]]] = {}
    for e in edges:
        by_node.setdefault(e[1] if direction == "up" else e[0], []).append(e)
    while frontier:
        for e in by_node.get(frontier.pop(), []):
            reached.add(e)
            nxt = e[0] if direction == "up" else e[1]
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    return reached


def verify_lineage(
    answer: dict[str, Any],
    vkey: str | Verifier,
    artifact: str | None = None,
    *,
    direction: str | None = None,
    depth: int | None = None,
    cache: HistoryCache | None = None,
) -> VerifiedLineage:
    """Verify a lineage answer: the checkpoint, every entry's inclusion, that each edge ``input → output``
    is stated by its entry (the input among its materials, the output among its subjects), and that every edge
    is reachable from ``artifact`` in the answer's direction (an answer may not graft on another lineage); with
    ``direction``, the answer must be in that direction.

    With a completeness proof (asked with ``complete=true``), every edge up to the answer's depth below the
    committed size is derived from the entries and must be in the answer (``complete``); without one, the log
    may have left edges out and ``incomplete`` says so."""
    name, cp = _open_answer(answer, vkey, artifact, "lineage")
    try:
        edges = tuple((e["from"], e["to"], e["logIndex"]) for e in answer["edges"])
        nodes = tuple(answer["nodes"])
        answered = answer["direction"]
        truncated = answer.get("truncated", False)
    except (KeyError, TypeError, AttributeError) as exc:
        raise FormatError(f"malformed lineage answer: {exc}") from exc
    if not isinstance(truncated, bool):
        raise FormatError(f"lineage 'truncated' must be true or false, not {truncated!r}")
    entries = {v.log_index: v for v in verify_entries(answer.get("entries"), cp, cache)}
    if answered not in ("up", "down"):
        raise FormatError(f"lineage direction must be 'up' or 'down', not {answered!r}")
    if direction is not None and answered != direction:
        raise VerificationError(f"the answer is the lineage {answered}, not {direction} as asked")
    if depth is not None and answer.get("depth") != depth:
        raise VerificationError(f"the answer is the lineage to depth {answer.get('depth')!r}, not {depth} as asked")
    unreachable = set(edges) - _reachable(name, answered, edges)
    if unreachable:
        src, dst, idx = min(unreachable, key=lambda e: e[2])
        raise VerificationError(
            f"edge {src} -> {dst} (entry {idx}) is not reachable from {name} going {answered}: "
            "the answer claims lineage it does not connect to the artifact"
        )
    node_set = set(nodes)
    stray = node_set - {name} - {d for src, dst, _ in edges for d in (src, dst)}
    if stray:
        raise VerificationError(f"node {min(stray)} is in no edge of the answer: not reachable from {name}")
    for src, dst, idx in edges:
        v = entries.get(idx)
        if v is None:
            raise VerificationError(f"edge {src} -> {dst} cites entry {idx}, which the answer does not prove")
        if src not in _said(v.entry, "materials") or dst not in _said(v.entry, "subjects"):
            raise VerificationError(f"entry {idx} does not state {src} -> {dst}")
        if src not in node_set or dst not in node_set:
            raise VerificationError(f"edge {src} -> {dst} names an artifact missing from the nodes")
    closure: Closure | None = None
    incomplete: str | None = "the answer carries no completeness proof (ask with complete=true)"
    if answer.get("completeness") is not None:
        closure = _closure(answer["completeness"], cp, cache, name)
        assert closure is not None  # the member is there
        depth = answer.get("depth")
        if not isinstance(depth, int) or isinstance(depth, bool) or depth < 1:
            raise FormatError(f"a lineage with a completeness proof states its depth, not {depth!r}")
        incomplete = (
            "the log capped its answer (truncated)"
            if truncated
            else _check_lineage_closure(closure, name, answered, depth, edges, entries)
        )
    elif "completeness" in answer:
        incomplete = "the log has not committed its map yet"
    return VerifiedLineage(name, answered, cp, nodes, edges, entries, truncated, closure, incomplete, answer)


def _check_lineage_closure(
    closure: Closure,
    artifact: str,
    direction: str,
    depth: int,
    edges: tuple[tuple[str, str, int], ...],
    entries: dict[int, VerifiedEntry],
) -> str | None:
    """Derive, from the entries themselves, every edge up to ``depth`` below the committed size and check each
    is in the answer: breadth first, each expanded artifact's entries must be all there (the map's newest and
    count, chained by back-links). Raises for what the log hid; returns why completeness cannot be shown (an
    artifact without a map proof), or None."""
    size = closure.commitment.tree_size
    values = dict(closure.values)
    answered = {(src, dst, idx) for src, dst, idx in edges}
    level, seen = [artifact], {artifact}
    for _ in range(depth):
        nxt: list[str] = []
        for node in level:
            if node not in values:
                return f"no map proof for {node}"
            naming = sorted(
                (v for v in entries.values() if v.log_index < size and v.names(node)), key=lambda v: -v.log_index
            )
            value = values[node]
            if value is None:
                if naming:
                    raise VerificationError(
                        f"the committed map says no entry below {size} names {node}, "
                        f"but entry {naming[0].log_index} does"
                    )
                continue
            if not naming or naming[0].log_index != value.newest or len(naming) != value.count:
                raise VerificationError(
                    f"lineage incomplete: the committed map has {value.count} entries naming {node} below {size}, "
                    f"the newest {value.newest}; the answer has {len(naming)}"
                    + (f", the newest {naming[0].log_index}" if naming else "")
                )
            linking = [v for v in naming if v.entry.links is not None and node in v.entry.links]
            for i, newer in enumerate(linking):
                older = linking[i + 1].log_index if i + 1 < len(linking) else None
                if newer.entry.links is not None and newer.entry.links.get(node) != older:
                    raise VerificationError(
                        f"lineage incomplete: entry {newer.log_index} links {node} to an entry not here"
                    )
            for v in linking:
                subjects, materials = _said(v.entry, "subjects"), _said(v.entry, "materials")
                if direction == "up" and node in subjects:
                    found = [(m, node, v.log_index) for m in materials if m != node]
                elif direction == "down" and node in materials:
                    found = [(node, s, v.log_index) for s in subjects if s != node]
                else:
                    found = []
                for edge in found:
                    if edge not in answered:
                        raise VerificationError(
                            f"lineage incomplete: entry {v.log_index} states {edge[0]} -> {edge[1]}, "
                            "which the answer omits"
                        )
                    other = edge[0] if direction == "up" else edge[1]
                    if other not in seen:
                        seen.add(other)
                        nxt.append(other)
        level = nxt
    return None
