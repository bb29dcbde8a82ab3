"""Replay: rebuild a log's tree from its entry bundles and re-verify every entry from the submission it was
admitted from, trusting nothing the log says about it.

Per entry (pure, :func:`check_entry`): the submission parses and its signatures verify; the quote, if any,
verifies against the collateral the entry names (fetched by digest, checked against that digest) at the
entry's integration time, under the monitor's own trust roots; its REPORTDATA binds this statement (or
key) and nonce; and the body the log committed to is, byte for byte, the one these facts produce. Across
entries (sequential, :class:`Replay`): the leaves rebuild the signed root; every back-link names the
previous entry naming that artifact; every key-attestation reference names an earlier entry attesting that
key, with the quote the citing entry was re-verified with (at its own integration time, against the
collateral it names) and in the same TDX mode; every nonce is the root of the tree at the size the entry says
(proved by a consistency proof to the rebuilt root).

A monitor holding a grant (``token``: the tenant's own, or a regulator's) also reads the disclosures of every
confidential entry it may read and checks each is a value the entry's signed statement hides
(:func:`~atlas_log.disclosure.verify_disclosures`): a log serving other values than the ones committed is
caught. Entries it may not read, and erased ones, are counted, not flagged.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from atlas_log._encoding import b64decode, b64encode, json_loads
from atlas_log.checkpoint import Checkpoint
from atlas_log.client import LogClient
from atlas_log.disclosure import verify_disclosures
from atlas_log.entry import facts_json, parse_leaf
from atlas_log.errors import (
    Error,
    FormatError,
    LogProblemError,
    LogTimeoutError,
    LogUnreachableError,
    VerificationError,
)
from atlas_log.merkle import CompactRange, RootHash, verify_consistency
from atlas_log.reverify import Checked, Trust, check_entry
from atlas_log.submission import submitted_extraction
from atlas_log.tdx.collateral import Collateral
from atlas_log.tdx.verification_cache import VerificationCache
from atlas_log.tiles import TILE_WIDTH
from atlas_log.vmap import MapCommitment, MemoryMap, map_changes

__all__ = [
    "TIME_TOLERANCE_S",
    "Replay",
    "ReplayResult",
    "entry_evidence",
    "map_evidence",
    "order_evidence",
]

# How far an entry's integratedTime may precede an earlier entry's, and follow the moment a monitor first saw
# the checkpoint covering it: the log stamps entries at admission, several processes (and hosts) admit at
# once, and batching, pushback and clock skew reorder those stamps by seconds. Beyond this it is backdating.
TIME_TOLERANCE_S = 300


@dataclass
class ReplayResult:
    size: int = 0
    entries: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)
    bad_entries: list[tuple[int, str]] = field(default_factory=list)  # (index, reason)
    backdated: list[tuple[int, int, str]] = field(default_factory=list)  # (earlier index, later index, reason)
    bad_commitments: list[tuple[int, str]] = field(default_factory=list)  # map commitments the leaves contradict
    bad_disclosures: list[tuple[int, str]] = field(default_factory=list)  # served values the entry does not hide
    disclosures: dict[str, int] = field(default_factory=dict)  # with a grant: confidential entries by outcome


# One log client, collateral cache and verification cache per worker process.
_worker: dict[str, Any] = {}

# The log could not be asked: the replay round stops (and the next one resumes), no entry is blamed for it.
_UNASKED = (LogUnreachableError, LogTimeoutError)


def _init_worker(url: str, trust: Trust, token: str | None = None) -> None:
    # No key: a worker reads entry bundles, submissions and collateral, which the replay itself checks.
    client = LogClient(url, None, timeout_s=60, token=token)
    _worker.update(
        client=client,
        trust=trust,
        cache=VerificationCache(),
        coll={},
        rims={},
        ocsp={},
        cited={},
        granted=token is not None,
    )


T = TypeVar("T")


def _by_digest(table: str, digest: str, fetch: Callable[[], T]) -> T | None:
    """What ``fetch`` gets from the log for ``digest``, once per worker; None when the log does not serve it,
    or serves something without that digest (the entry naming it then fails its check, saying so)."""
    known: dict[str, T | None] = _worker[table]
    if digest not in known:
        try:
            known[digest] = fetch()
        except _UNASKED:
            raise
        except Error:
            known[digest] = None
    return known[digest]


def _collateral(digest: str) -> Collateral | None:
    return _by_digest("coll", digest, lambda: _worker["client"].collateral(digest))


def _rim(digest: str) -> bytes | None:
    return _by_digest("rims", digest, lambda: _worker["client"].rim(digest))


def _ocsp(digest: str) -> bytes | None:
    return _by_digest("ocsp", digest, lambda: _worker["client"].ocsp(digest))


def _served(digests: set[str], fetch: Callable[[str], bytes]) -> dict[str, str]:
    """The documents the log serves for ``digests``, base64 by digest; one it does not serve is left out (the
    evidence then lacks it, and says so when checked)."""
    out = {}
    for digest in digests:
        try:
            out[digest] = b64encode(fetch(digest))
        except _UNASKED:
            raise
        except Error:
            pass
    return out


def _cited_quote(index: int) -> bytes | None:
    """The raw quote of entry ``index`` as the log serves it (its submission's ``tee.quote``)."""
    known: dict[int, bytes | None] = _worker["cited"]
    if index not in known:
        try:
            submission: Any = _worker["client"].submissions(index, 1).items[0]
            known[index] = b64decode(submission["tee"]["quote"], "tee.quote")
        except _UNASKED:
            raise
        except (Error, KeyError, IndexError, TypeError):
            known[index] = None
    return known[index]


def _check_block(block: int, width: int) -> list[Checked]:
    """Fetch one entry bundle and its submissions from the log and check every entry in it."""
    client: LogClient = _worker["client"]
    leaves = client.entry_bundle(block, width).leaves
    start = block * TILE_WIDTH
    # A submission the log cannot serve as JSON comes as its bytes, so that entry alone is flagged.
    raws = client.submissions(start, width).items
    trust, cache = _worker["trust"], _worker["cache"]
    checked = [
        check_entry(start + i, leaf, raw, _collateral, trust, cache, _cited_quote, _rim, _ocsp)
        for i, (leaf, raw) in enumerate(zip(leaves, raws, strict=True))
    ]
    if _worker["granted"]:
        checked = [_check_disclosures(c, leaf, raw) for c, leaf, raw in zip(checked, leaves, raws, strict=True)]
    return checked


_UNREAD = {403: "not granted", 404: "not kept", 410: "erased"}


def _check_disclosures(c: Checked, leaf: bytes, raw: bytes | dict[str, Any]) -> Checked:
    """With a grant: the disclosures the log serves for a confidential entry (one whose verified statement
    hides values) must each be a value it hides."""
    envelope = raw.get("dsseEnvelope") if isinstance(raw, dict) else None
    if c.problem is not None or c.commitment is not None or not isinstance(envelope, dict):
        return c
    try:
        statement = json_loads(b64decode(envelope.get("payload", ""), "payload"), "statement")
    except FormatError:
        return c
    if not isinstance(statement, dict) or "_sd_alg" not in statement:
        return c
    try:
        served = _worker["client"].served_disclosures(c.index)
    except LogProblemError as exc:
        if exc.status in _UNREAD:
            return replace(c, disclosures=_UNREAD[exc.status])
        raise
    try:
        verify_disclosures(parse_leaf(leaf).body, envelope, served)
    except (FormatError, VerificationError) as exc:
        why = f"entry {c.index}: the disclosures the log serves are not values the entry hides: {exc}"
        return replace(c, disclosures="mismatch", disclosure_problem=why)
    return replace(c, disclosures="checked")


class Replay:
    """Replays the log at ``url`` with ``workers`` processes checking entries. It keeps its state (the
    rebuilt tree, the last entry naming each artifact, the key attestations seen), so each :meth:`run`
    continues where the previous one stopped."""

    def __init__(self, url: str, trust: Trust, workers: int | None = None, token: str | None = None) -> None:
        self.url = url.rstrip("/")
        self.trust = trust
        self.token = token  # a grant to read disclosures: check the ones it may read
        self.workers = max(1, workers if workers is not None else (os.cpu_count() or 1))
        self.tree = CompactRange()
        self._last: dict[str, int] = {}
        self._keys: dict[int, tuple[str, Mapping[str, Any]]] = {}
        self._latest: tuple[int, int] | None = None  # (index, integratedTime) of the latest-dated entry so far
        # The verifiable map rebuilt from the entries, up to the last commitment checked, and the digests the
        # entries after it name (folded in at the next commitment, up to the size it covers).
        self.map = MemoryMap()
        self._map_size = 0
        self._unfolded: list[tuple[int, tuple[str, ...]]] = []
        self.last_commitment: int | None = None  # index of the newest map commitment checked

    def _blocks(self, start: int, size: int) -> Iterator[list[Checked]]:
        first = start // TILE_WIDTH
        blocks = [
            (b, min(TILE_WIDTH, size - b * TILE_WIDTH)) for b in range(first, (size + TILE_WIDTH - 1) // TILE_WIDTH)
        ]
        if not blocks:
            return
        if self.workers == 1:
            _init_worker(self.url, self.trust, self.token)
            yield from (_check_block(b, w) for b, w in blocks)
            return
        init = (self.url, self.trust, self.token)
        with ProcessPoolExecutor(self.workers, initializer=_init_worker, initargs=init) as pool:
            yield from pool.map(_check_block, *zip(*blocks, strict=True), chunksize=1)

    def run(
        self,
        checkpoint: Checkpoint,
        progress: Callable[[int, int], None] | None = None,
        seen_at: int | None = None,
    ) -> ReplayResult:
        """Replay the entries from where the last run stopped up to ``checkpoint`` (already verified).

        ``seen_at`` is when the caller first held ``checkpoint`` (Unix seconds): no entry it covers may be
        dated later than that, give or take :data:`TIME_TOLERANCE_S`.
        """
        started = time.perf_counter()
        result = ReplayResult(size=checkpoint.size)
        begin = self.tree.size
        if checkpoint.size < begin:
            result.problems.append(f"the log now signs size {checkpoint.size}, below the {begin} entries replayed")
            return result
        nonces: dict[int, set[bytes]] = {}
        for block in self._blocks(begin, checkpoint.size):
            for c in block:
                if c.index < self.tree.size:  # the partial block replayed last time
                    continue
                self.tree.append(c.leaf_hash)
                problem = c.problem or self._sequential(c, self._last, self._keys)
                if problem is None and c.commitment is not None:
                    wrong = self._check_commitment(c.index, c.commitment)
                    if wrong is not None:
                        result.problems.append(wrong)
                        result.bad_commitments.append((c.index, wrong))
                if problem:
                    result.problems.append(problem)
                    result.bad_entries.append((c.index, problem))
                if c.disclosures is not None:
                    result.disclosures[c.disclosures] = result.disclosures.get(c.disclosures, 0) + 1
                if c.disclosure_problem is not None:
                    result.problems.append(c.disclosure_problem)
                    result.bad_disclosures.append((c.index, c.disclosure_problem))
                elif c.integrated_time is not None:
                    late = self._time_problem(c.index, c.integrated_time, self._latest, seen_at)
                    if late is not None:
                        result.problems.append(late)
                        if self._latest is not None and c.integrated_time < self._latest[1] - TIME_TOLERANCE_S:
                            result.backdated.append((self._latest[0], c.index, late))
                    elif self._latest is None or c.integrated_time > self._latest[1]:
                        # A future-dated entry is reported once; it does not make its successors look backdated.
                        self._latest = (c.index, c.integrated_time)
                if c.nonce is not None:
                    nonces.setdefault(c.nonce[0], set()).add(c.nonce[1])
                for d in c.linked:
                    self._last[d] = c.index
                if c.named:
                    self._unfolded.append((c.index, c.named))
                if c.attests_key is not None:
                    self._keys[c.index] = c.attests_key
            result.entries = self.tree.size - begin
            if progress:
                progress(self.tree.size, checkpoint.size)
        if self.tree.size != checkpoint.size or self.tree.root() != checkpoint.root_hash:
            result.problems.append(
                f"the {self.tree.size} entries served do not rebuild the signed tree of size {checkpoint.size}"
            )
        else:
            result.problems.extend(self._check_nonces(nonces, checkpoint))
        result.seconds = time.perf_counter() - started
        return result

    def _check_commitment(self, index: int, commitment: MapCommitment) -> str | None:
        """The map of the first ``commitment.tree_size`` leaves, rebuilt here, must have the committed root."""
        size = commitment.tree_size
        if size < self._map_size:
            return (
                f"entry {index}: a map commitment for size {size}, below the size {self._map_size} an earlier "
                "commitment covered"
            )
        folded = [(i, named) for i, named in self._unfolded if i < size]
        self._unfolded = [(i, named) for i, named in self._unfolded if i >= size]
        self.map.update(map_changes(folded))
        self._map_size = size
        self.last_commitment = index
        if self.map.root != commitment.root or self.map.keys != commitment.keys:
            return (
                f"entry {index}: the map commitment for size {size} has root {commitment.root.hex()} "
                f"({commitment.keys} keys), but the leaves give {self.map.root.hex()} ({self.map.keys} keys)"
            )
        return None

    @staticmethod
    def _sequential(c: Checked, last: dict[str, int], keys: dict[int, tuple[str, Mapping[str, Any]]]) -> str | None:
        for d in c.linked:
            if c.links.get(d) != last.get(d):
                return (
                    f"entry {c.index}: its back-link for {d} is {c.links.get(d)}, "
                    f"but the previous entry naming it is {last.get(d)}"
                )
        if c.key_reference is not None:
            ref, fingerprint, inherited = c.key_reference
            attested = keys.get(ref) if ref < c.index else None
            if attested is None or attested[0] != fingerprint:
                return f"entry {c.index}: entry {ref} is not an earlier quote-attested key entry for its signer"
            if dict(inherited) != dict(attested[1]):
                return (
                    f"entry {c.index}: the quote or TDX mode it was re-verified with differs from the one entry "
                    f"{ref} attested"
                )
        return None

    @staticmethod
    def _time_problem(index: int, t: int, latest: tuple[int, int] | None, seen_at: int | None) -> str | None:
        """Entry ``index`` dated ``t``: not before the latest-dated earlier entry (``(index, time)``), nor
        after ``seen_at``, by more than :data:`TIME_TOLERANCE_S`."""
        if latest is not None and t < latest[1] - TIME_TOLERANCE_S:
            return (
                f"entry {index}: its integratedTime {t} is {latest[1] - t}s before entry {latest[0]}'s "
                f"({latest[1]}), more than the {TIME_TOLERANCE_S}s the log's stamps may step back: backdated"
            )
        if seen_at is not None and t > seen_at + TIME_TOLERANCE_S:
            return (
                f"entry {index}: its integratedTime {t} is {t - seen_at}s in the future of the checkpoint "
                f"covering it (first seen at {seen_at})"
            )
        return None

    def _check_nonces(self, nonces: Mapping[int, set[bytes]], checkpoint: Checkpoint) -> list[str]:
        """Every nonce must be the root at the size the entry named: one consistency proof per size."""
        problems = []
        with LogClient(self.url, None, timeout_s=30) as client:
            for size, roots in sorted(nonces.items()):
                if len(roots) > 1:
                    problems.append(f"entries name {len(roots)} different roots for checkpoint size {size}")
                    continue
                root = next(iter(roots))
                try:
                    proof = client.consistency_proof(size, checkpoint.size) if size < checkpoint.size else []
                    verify_consistency(size, checkpoint.size, proof, RootHash(root), checkpoint.root_hash)
                except Error as exc:
                    problems.append(f"a nonce is not the root of the tree at size {size}: {exc}")
        return problems


def order_evidence(
    url: str, vkey: str, note: bytes, checkpoint: Checkpoint, earlier: int, later: int, reason: str
) -> dict[str, Any]:
    """Portable evidence that entry ``later`` is dated more than :data:`TIME_TOLERANCE_S` before entry
    ``earlier``, which precedes it in the signed tree: both leaves with their inclusion proofs."""
    from atlas_log.evidence import BackdatedEvidence, LoggedLeaf  # evidence checks entries with this module

    entries = []
    with LogClient(url.rstrip("/"), vkey, timeout_s=30) as client:
        for index in (earlier, later):
            logged = client.entry(index, checkpoint)  # proved included in the checkpoint
            entries.append(LoggedLeaf(index, logged.leaf, tuple(logged.inclusion_proof)))
    first, second = entries
    return BackdatedEvidence(log=vkey, reason=reason, checkpoint=note, entries=(first, second)).to_json()


def map_evidence(url: str, vkey: str, note: bytes, checkpoint: Checkpoint, index: int, reason: str) -> dict[str, Any]:
    """Portable evidence that the map commitment at ``index`` is not the map of the entries it covers: the
    commitment with its inclusion proof, those leaves with the fact lists they commit to, and the consistency
    proof joining them to the checkpoint."""
    from atlas_log.evidence import LoggedLeaf, MapCommitmentEvidence  # evidence checks entries with this module

    with LogClient(url.rstrip("/"), vkey, timeout_s=60) as client:
        logged = client.entry(index, checkpoint)  # proved included in the checkpoint
        size = MapCommitment.from_body(parse_leaf(logged.leaf).body).tree_size
        leaves: list[bytes] = []
        facts: dict[int, bytes] = {}
        for block in range((size + TILE_WIDTH - 1) // TILE_WIDTH):
            width = min(TILE_WIDTH, size - block * TILE_WIDTH)
            leaves.extend(client.entry_bundle(block, width).leaves[:width])
            for i, raw in enumerate(client.submissions(block * TILE_WIDTH, width).items):
                try:
                    extraction = submitted_extraction(raw)
                except FormatError:  # the log's own commitments, and submissions it cannot serve, name nothing
                    continue
                if extraction.facts:
                    facts[block * TILE_WIDTH + i] = facts_json(extraction)
        proof = client.consistency_proof(size, checkpoint.size) if 0 < size < checkpoint.size else []
    return MapCommitmentEvidence(
        log=vkey,
        reason=reason,
        checkpoint=note,
        commitment=LoggedLeaf(index, logged.leaf, tuple(logged.inclusion_proof)),
        leaves=tuple(leaves),
        facts=facts,
        proof=tuple(proof),
    ).to_json()


def entry_evidence(url: str, vkey: str, note: bytes, checkpoint: Checkpoint, index: int, reason: str) -> dict[str, Any]:
    """Portable evidence that the entry at ``index`` does not verify: the signed checkpoint, the entry's
    leaf with its inclusion proof, its submission, and the collateral it names."""
    from atlas_log.evidence import BadEntryEvidence, LoggedLeaf  # evidence checks entries with this module

    with LogClient(url.rstrip("/"), vkey, timeout_s=30) as client:
        logged = client.entry(index, checkpoint)  # proved included in the checkpoint
        try:
            tee = parse_leaf(logged.leaf).tee
        except FormatError:  # a leaf or tee record the parser refuses names no collateral
            tee = None
        digest = tee.evidence.verdict.collateral_set if tee is not None else None
        coll = None
        if digest:
            try:
                served = client.collateral(digest)
                coll = served.to_json()
            except _UNASKED:
                raise
            except Error:  # not served, or not the set of that digest: the entry's evidence says so
                coll = None
        gpus = tee.gpus if tee is not None else ()
        rims = _served({d for g in gpus for _, _, _, d in g.rims}, client.rim)
        responses = _served({d for g in gpus for _, _, _, d in g.revocation}, client.ocsp)
    submission = logged.submission
    if submission is None:
        raise FormatError(f"the log serves no submission for entry {index}")
    return BadEntryEvidence(
        log=vkey,
        reason=reason,
        checkpoint=note,
        entry=LoggedLeaf(index, logged.leaf, tuple(logged.inclusion_proof)),
        # The log serves a stored submission it cannot parse within the limits as its bytes, base64.
        submission=b64encode(submission if isinstance(submission, bytes) else json.dumps(submission).encode()),
        collateral=coll,
        rims=rims or None,
        ocsp=responses or None,
    ).to_json()
