"""Portable evidence that a log misbehaved, and its offline check.

JSON form::

    {"type": "atlas-log/evidence/v1", "kind": "inconsistent" | "fork" | "rollback" | "bad-entry",
     "log": "<verifier key>", "reason": "...",
     "checkpoints": ["<older signed note>", "<newer signed note>"], "proof": ["<b64>", ...],
     "prefixRoot": "<b64>"}

Evidence is checked against the log key the verifier pins; the key an evidence file names is never trusted
(anyone can make a key with the log's name). ``kind`` and ``reason`` are labels: the checks decide.

Two checkpoints hold as evidence when both are signed by the pinned key, the smaller tree comes first, and
they cannot both be true:

* the same size with two roots; or
* the older declares the log frozen and the newer is larger; or
* the newer is larger, and ``proof`` is a consistency proof (RFC 9162 §2.1.4.2) that verifies from
  ``prefixRoot`` at the older size to the newer root, where ``prefixRoot`` is not the older root. A proof
  that verifies pins the root of the newer tree's first leaves (SHA-256 is collision resistant), so the
  newer tree does not extend the older one.

A proof that fails shows nothing (anyone can write one), nor does a smaller tree signed "later": the order
in which a log served its checkpoints is not signed, and an honest prefix is no rollback.

Kind ``bad-entry`` (from a replay) holds one checkpoint and ``"entry": {"logIndex", "leaf",
"inclusionProof", "submission", "collateral"}``. It holds when the leaf is in the signed tree, the
submission is the one the leaf commits to (its envelope hash, each signer's key fingerprint and its quote
hash; the tee request members are taken from the leaf), the evidence carries the collateral the leaf names,
and that submission does not verify at the leaf's ``integratedTime`` under the verifier's trust roots. An
X.509 chain that does not verify holds only when the leaf commits to that very chain (``chainSha256``; leaves
logged before it was recorded commit only to the signing certificate, and a chain that does not verify proves
nothing about them); nor does a quote the leaf itself records as simulated, checked
under Intel's root alone (pin the simulated root to check it). An entry dated before the collateral it
names was issued (or after it expired) is a bad entry: its quote does not verify at its own time.

Kind ``backdated`` holds one checkpoint and ``"entries": [{"logIndex", "leaf", "inclusionProof"}, ...]``
(two): it holds when both leaves are in the signed tree, the first precedes the second, and the second is
dated more than :data:`~atlas_log.replay.TIME_TOLERANCE_S` before the first. The log stamps entries when it
admits them and sequences them in that order within that tolerance; this is its stated contract.

Kind ``map-commitment`` holds one checkpoint, ``"commitment": {"logIndex", "leaf", "inclusionProof"}``, the
first ``N`` leaves of the log (``"leaves"``: base64, in order, where ``N`` is the size the commitment covers),
``"facts"`` (index → base64 fact list, :func:`~atlas_log.entry.facts_json`, for every one of those entries
that names an artifact) and ``"proof"``, a consistency proof from ``N`` to the checkpoint's size. It holds when
the commitment is in the signed tree, the leaves are the signed tree's first ``N`` (their root joins the
checkpoint by the proof), each fact list is the one its leaf commits to, and the verifiable map
(:mod:`atlas_log.vmap`) of the digests they name is not the one committed (root or number of keys). Its size
grows with ``N``: the map is a function of all those entries.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509

from atlas_log._encoding import b64decode, b64encode, json_loads
from atlas_log.bundle import chain_digest, parse_bundle, signing_certificate
from atlas_log.checkpoint import Checkpoint, open_checkpoint, succession
from atlas_log.dsse import PublicKey, SpkiDer, parse_envelope
from atlas_log.entry import canonical_json, fact_names, parse_leaf
from atlas_log.errors import FormatError, InconsistentLogError, ProofError, VerificationError
from atlas_log.gpu.roots import DEVICE_IDENTITY_ROOT_SHA256 as GPU_ROOT
from atlas_log.merkle import (
    EMPTY_ROOT,
    CompactRange,
    RootHash,
    consistency_prefix_root,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)
from atlas_log.note import Verifier
from atlas_log.receipt import quote_identities
from atlas_log.replay import TIME_TOLERANCE_S
from atlas_log.reverify import Trust, check_entry
from atlas_log.tdx.collateral import Collateral
from atlas_log.tdx.pki import INTEL_ROOT_SPKI_SHA256 as INTEL_ROOT
from atlas_log.vmap import MapCommitment, MapKey, MemoryMap, map_changes

__all__ = [
    "EVIDENCE_TYPE",
    "BackdatedEvidence",
    "BadEntryEvidence",
    "Evidence",
    "InconsistencyEvidence",
    "LoggedLeaf",
    "MapCommitmentEvidence",
    "evidence_from_error",
    "inconsistency_evidence",
    "verify_evidence",
]

EVIDENCE_TYPE = "atlas-log/evidence/v1"


def _index(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise FormatError(f"{what} must be an integer")
    return value


def _hashes(value: Any, what: str) -> tuple[bytes, ...]:
    if not isinstance(value, list):
        raise FormatError(f"{what} must list base64 hashes")
    return tuple(b64decode(h, what) for h in value)


def _notes(value: Any, count: int) -> tuple[bytes, ...]:
    if not isinstance(value, list) or len(value) < count or not all(isinstance(n, str) for n in value[:count]):
        raise FormatError(f"checkpoints must list {count} signed note(s)")
    return tuple(n.encode() for n in value[:count])


@dataclass(frozen=True, slots=True)
class LoggedLeaf:
    """A leaf of the log with its inclusion proof in the evidence's signed tree."""

    log_index: int
    leaf: bytes
    inclusion_proof: tuple[bytes, ...]

    @classmethod
    def from_json(cls, obj: Any, what: str) -> LoggedLeaf:
        if not isinstance(obj, dict):
            raise FormatError(f"{what} must be an object")
        try:
            return cls(
                _index(obj["logIndex"], f"{what}.logIndex"),
                b64decode(obj["leaf"], "leaf"),
                _hashes(obj["inclusionProof"], "proof"),
            )
        except KeyError as exc:
            raise FormatError(f"{what} lacks {exc}") from exc

    def to_json(self) -> dict[str, Any]:
        return {
            "logIndex": self.log_index,
            "leaf": b64encode(self.leaf),
            "inclusionProof": [b64encode(h) for h in self.inclusion_proof],
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Evidence:
    """Portable evidence that a log misbehaved (the JSON form is in the module docstring).

    ``log`` is the verifier key the evidence names (None when it names none) and ``reason`` a label; neither
    is trusted: :func:`verify_evidence` decides. Parse with :meth:`from_json`, write with ``to_json()``.
    """

    log: str | None
    reason: str | None

    @staticmethod
    def from_json(obj: Any) -> Evidence:
        """The evidence in a parsed JSON document; raises :class:`FormatError` when it is malformed."""
        if not isinstance(obj, dict):
            raise FormatError("evidence must be a JSON object")
        if obj.get("type") != EVIDENCE_TYPE:
            raise FormatError(f"not {EVIDENCE_TYPE} evidence")
        log, reason = obj.get("log"), obj.get("reason")
        if log is not None and not isinstance(log, str):
            raise FormatError("log must be a verifier key")
        if reason is not None and not isinstance(reason, str):
            raise FormatError("reason must be a string")
        kind = obj.get("kind", "inconsistent")
        if kind == "bad-entry":
            return BadEntryEvidence._from_json(obj, log, reason)
        if kind == "backdated":
            return BackdatedEvidence._from_json(obj, log, reason)
        if kind == "map-commitment":
            return MapCommitmentEvidence._from_json(obj, log, reason)
        if not isinstance(kind, str):
            raise FormatError("kind must be a string")
        return InconsistencyEvidence._from_json(obj, log, reason, kind)

    def to_json(self) -> dict[str, Any]:
        raise NotImplementedError

    def _head(self, kind: str) -> dict[str, Any]:
        return {"type": EVIDENCE_TYPE, "kind": kind, "log": self.log, "reason": self.reason}


@dataclass(frozen=True, slots=True, kw_only=True)
class InconsistencyEvidence(Evidence):
    """Two signed checkpoints, the smaller tree first, that cannot both be true. ``kind`` labels how it was
    found (``inconsistent``, ``fork``, ``rollback``); ``prefix_root`` is the root of the newer tree's first
    leaves that ``proof`` leads from (trees of different sizes)."""

    kind: str = "inconsistent"
    checkpoints: tuple[bytes, bytes]
    proof: tuple[bytes, ...] = ()
    prefix_root: bytes | None = None

    @classmethod
    def _from_json(cls, obj: dict[str, Any], log: str | None, reason: str | None, kind: str) -> InconsistencyEvidence:
        notes = obj.get("checkpoints")
        if not isinstance(notes, list) or len(notes) != 2 or not all(isinstance(n, str) for n in notes):
            raise FormatError("checkpoints must list two signed notes, the smaller tree first")
        prefix = obj.get("prefixRoot")
        return cls(
            log=log,
            reason=reason,
            kind=kind,
            checkpoints=(notes[0].encode(), notes[1].encode()),
            proof=_hashes(obj.get("proof", []), "proof"),
            prefix_root=None if prefix is None else b64decode(prefix, "prefixRoot"),
        )

    def to_json(self) -> dict[str, Any]:
        out = {
            **self._head(self.kind),
            "checkpoints": [n.decode() for n in self.checkpoints],
            "proof": [b64encode(h) for h in self.proof],
        }
        if self.prefix_root is not None:
            out["prefixRoot"] = b64encode(self.prefix_root)
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class BackdatedEvidence(Evidence):
    """Two leaves of one signed tree, the later dated beyond the tolerance before the earlier."""

    checkpoint: bytes
    entries: tuple[LoggedLeaf, LoggedLeaf]

    @classmethod
    def _from_json(cls, obj: dict[str, Any], log: str | None, reason: str | None) -> BackdatedEvidence:
        entries = obj.get("entries")
        if not isinstance(entries, list) or len(entries) != 2:
            raise FormatError("malformed backdated evidence: entries must list two entries")
        (note,) = _notes(obj.get("checkpoints"), 1)
        first, second = (LoggedLeaf.from_json(e, "entries[]") for e in entries)
        return cls(log=log, reason=reason, checkpoint=note, entries=(first, second))

    def to_json(self) -> dict[str, Any]:
        return {
            **self._head("backdated"),
            "checkpoints": [self.checkpoint.decode()],
            "entries": [e.to_json() for e in self.entries],
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class BadEntryEvidence(Evidence):
    """A leaf of a signed tree whose entry does not verify, with what re-verifying it takes: the submission
    (as the log served it: base64 of its bytes, or its JSON object), the collateral (PCS parts, base64) the
    entry names, and the GPU RIMs a composite entry records (base64, by SHA-256)."""

    checkpoint: bytes
    entry: LoggedLeaf
    submission: str | dict[str, Any]
    collateral: dict[str, Any] | None = None
    rims: dict[str, str] | None = None
    ocsp: dict[str, str] | None = None

    @classmethod
    def _from_json(cls, obj: dict[str, Any], log: str | None, reason: str | None) -> BadEntryEvidence:
        (note,) = _notes(obj.get("checkpoints"), 1)
        e = obj.get("entry")
        entry = LoggedLeaf.from_json(e, "entry")
        assert isinstance(e, dict)  # LoggedLeaf.from_json checked it
        submission, collateral, rims, ocsp = e.get("submission"), e.get("collateral"), e.get("rims"), e.get("ocsp")
        if not isinstance(submission, str | dict):
            raise FormatError("malformed bad-entry evidence: entry.submission must be base64 or an object")
        if collateral is not None and not isinstance(collateral, dict):
            raise FormatError("malformed bad-entry evidence: entry.collateral must be an object")
        if rims is not None and (not isinstance(rims, dict) or not all(isinstance(v, str) for v in rims.values())):
            raise FormatError("malformed bad-entry evidence: entry.rims must map digests to base64")
        if ocsp is not None and (not isinstance(ocsp, dict) or not all(isinstance(v, str) for v in ocsp.values())):
            raise FormatError("malformed bad-entry evidence: entry.ocsp must map digests to base64")
        return cls(
            log=log,
            reason=reason,
            checkpoint=note,
            entry=entry,
            submission=submission,
            collateral=collateral,
            rims=rims,
            ocsp=ocsp,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            **self._head("bad-entry"),
            "checkpoints": [self.checkpoint.decode()],
            "entry": {
                **self.entry.to_json(),
                "submission": self.submission,
                "collateral": self.collateral,
                **({"rims": self.rims} if self.rims else {}),
                **({"ocsp": self.ocsp} if self.ocsp else {}),
            },
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class MapCommitmentEvidence(Evidence):
    """A map commitment of a signed tree that the log's own first leaves contradict."""

    checkpoint: bytes
    commitment: LoggedLeaf
    leaves: tuple[bytes, ...]
    facts: Mapping[int, bytes]
    proof: tuple[bytes, ...]

    @classmethod
    def _from_json(cls, obj: dict[str, Any], log: str | None, reason: str | None) -> MapCommitmentEvidence:
        (note,) = _notes(obj.get("checkpoints"), 1)
        leaves, facts = obj.get("leaves"), obj.get("facts", {})
        if not isinstance(leaves, list):
            raise FormatError("malformed map-commitment evidence: leaves must list base64 leaves")
        if not isinstance(facts, dict) or not all(k.isdigit() and len(k) < 17 for k in facts):
            raise FormatError("malformed map-commitment evidence: facts must map entry indices to base64 fact lists")
        return cls(
            log=log,
            reason=reason,
            checkpoint=note,
            commitment=LoggedLeaf.from_json(obj.get("commitment"), "commitment"),
            leaves=tuple(b64decode(leaf, "leaves[]") for leaf in leaves),
            facts={int(k): b64decode(v, f"facts.{k}") for k, v in facts.items()},
            proof=_hashes(obj.get("proof", []), "proof"),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            **self._head("map-commitment"),
            "checkpoints": [self.checkpoint.decode()],
            "commitment": self.commitment.to_json(),
            "leaves": [b64encode(leaf) for leaf in self.leaves],
            "facts": {str(i): b64encode(f) for i, f in sorted(self.facts.items())},
            "proof": [b64encode(h) for h in self.proof],
        }


def inconsistency_evidence(
    verifier: Verifier,
    a: bytes,
    b: bytes,
    proof: Sequence[bytes],
    reason: str,
    kind: str = "inconsistent",
    path: Sequence[bytes] = (),
) -> InconsistencyEvidence:
    """Evidence from two signed notes of the log (in either order), smaller tree first.

    ``proof`` is the log's consistency proof from the smaller size to the larger. ``path`` is the log's
    inclusion path of leaf ``m`` (the smaller size) in the larger tree: when ``m`` is a power of two the
    consistency proof omits the root of the first ``m`` leaves, and that root is one of the path's hashes.
    Nothing is checked here beyond what picking ``prefixRoot`` needs; :func:`verify_evidence` decides.
    """
    first, second = sorted((a, b), key=lambda note: open_checkpoint(note, verifier).size)
    small, large = open_checkpoint(first, verifier), open_checkpoint(second, verifier)
    prefix_root = None
    if 0 < small.size < large.size:
        try:
            derived = consistency_prefix_root(small.size, large.size, proof)
        except ProofError:
            derived = None
        for candidate in [derived] if derived is not None else list(path):
            try:
                verify_consistency(small.size, large.size, proof, RootHash(candidate), large.root_hash)
            except ProofError:
                continue
            prefix_root = candidate
            break
    return InconsistencyEvidence(
        log=verifier.vkey,
        reason=reason,
        kind=kind,
        checkpoints=(first, second),
        proof=tuple(proof),
        prefix_root=prefix_root,
    )


def evidence_from_error(
    err: InconsistentLogError, verifier: Verifier, kind: str = "inconsistent", path: Sequence[bytes] = ()
) -> InconsistencyEvidence:
    """Evidence from what a client with trusted state raised (see :func:`inconsistency_evidence`)."""
    return inconsistency_evidence(verifier, err.old_checkpoint, err.new_checkpoint, err.proof, err.reason, kind, path)


def verify_evidence(evidence: Evidence | Any, vkey: str | Verifier, trust: Trust | None = None) -> str:
    """Check evidence (typed, or its parsed JSON) offline against the pinned log key ``vkey``; return a
    sentence saying what it proves, or raise :class:`VerificationError` (:class:`FormatError` when
    malformed). The rules are in the module docstring. ``trust`` (TDX and X.509 roots) is what an entry's
    quote and certificates are re-verified against; by default Intel's root.
    """
    verifier = vkey if isinstance(vkey, Verifier) else Verifier.from_vkey(vkey)
    ev = evidence if isinstance(evidence, Evidence) else Evidence.from_json(evidence)
    if ev.log is not None and ev.log != verifier.vkey:
        raise VerificationError(f"the evidence is about the key {ev.log}, not the pinned {verifier.vkey}")
    if isinstance(ev, BadEntryEvidence):
        return _bad_entry(ev, verifier, trust or Trust())
    if isinstance(ev, BackdatedEvidence):
        return _backdated(ev, verifier)
    if isinstance(ev, MapCommitmentEvidence):
        return _wrong_map(ev, verifier)
    assert isinstance(ev, InconsistencyEvidence)
    older, newer = (open_checkpoint(n, verifier) for n in ev.checkpoints)
    prefix_root = None if ev.prefix_root is None else RootHash(ev.prefix_root)
    return _inconsistent(verifier.name, older, newer, list(ev.proof), prefix_root)


def _inconsistent(
    name: str, older: Checkpoint, newer: Checkpoint, proof: list[bytes], prefix_root: RootHash | None
) -> str:
    if older.size > newer.size:
        raise VerificationError(
            f"the checkpoints are out of order (size {older.size} before {newer.size}): list the smaller tree "
            "first; a smaller tree served later proves nothing, as the order of serving is not signed"
        )
    if older.size == newer.size:
        if hmac.compare_digest(older.root_hash, newer.root_hash):
            raise VerificationError("both checkpoints state the same tree: no misbehaviour shown")
        return f"log {name} signed two different trees of size {older.size}"
    if succession(older) is not None:
        return f"log {name} declared itself frozen at size {older.size} and then signed size {newer.size}"
    if older.size == 0:
        if not hmac.compare_digest(older.root_hash, EMPTY_ROOT):
            return f"log {name} signed an empty tree with a root that is not the empty tree's"
        raise VerificationError("the empty tree is a prefix of every tree: no misbehaviour shown")
    if prefix_root is None:
        raise VerificationError(
            "trees of different sizes need prefixRoot (the root of the newer tree's first "
            f"{older.size} leaves) and a proof from it to the newer root: nothing shown"
        )
    try:
        verify_consistency(older.size, newer.size, proof, prefix_root, newer.root_hash)
    except ProofError as exc:
        raise VerificationError(
            f"the proof does not lead from prefixRoot at size {older.size} to the signed root of size "
            f"{newer.size} ({exc}): a proof that fails shows nothing"
        ) from exc
    if hmac.compare_digest(prefix_root, older.root_hash):
        raise VerificationError("the proof joins the two checkpoints: no misbehaviour shown")
    return (
        f"log {name} signed trees of sizes {older.size} and {newer.size} that do not join: the first "
        f"{older.size} leaves of the newer tree have root {prefix_root.hex()}, not {older.root_hash.hex()}"
    )


def _backdated(evidence: BackdatedEvidence, verifier: Verifier) -> str:
    """Two entries of one signed tree, the later one dated beyond the tolerance before the earlier one."""
    checkpoint = open_checkpoint(evidence.checkpoint, verifier)
    entries = [(e.log_index, e.leaf, list(e.inclusion_proof)) for e in evidence.entries]
    for index, leaf, proof in entries:
        verify_inclusion(leaf_hash(leaf), index, checkpoint.size, proof, checkpoint.root_hash)
    (i, leaf_i, _), (j, leaf_j, _) = entries
    if not i < j:
        raise VerificationError(f"entry {i} does not precede entry {j}: list the earlier entry first")
    t_i, t_j = parse_leaf(leaf_i).integrated_time, parse_leaf(leaf_j).integrated_time
    if t_j >= t_i - TIME_TOLERANCE_S:
        raise VerificationError(
            f"entry {j} is dated {t_i - t_j}s before entry {i}, within the {TIME_TOLERANCE_S}s tolerance: "
            "no misbehaviour shown"
        )
    return (
        f"log {verifier.name} dated entry {j} at {t_j}, {t_i - t_j}s before entry {i} ({t_i}) that precedes it "
        f"in its tree of size {checkpoint.size}: beyond the {TIME_TOLERANCE_S}s tolerance, entry {j} is backdated "
        f"(or entry {i} post-dated)"
    )


def _wrong_map(evidence: MapCommitmentEvidence, verifier: Verifier) -> str:
    """A map commitment that the signed tree's own first leaves contradict."""
    checkpoint = open_checkpoint(evidence.checkpoint, verifier)
    c = evidence.commitment
    verify_inclusion(leaf_hash(c.leaf), c.log_index, checkpoint.size, list(c.inclusion_proof), checkpoint.root_hash)
    try:
        commitment = MapCommitment.from_body(parse_leaf(c.leaf).body)
    except FormatError as exc:
        raise VerificationError(f"entry {c.log_index} is not a map commitment: {exc}") from exc
    size = commitment.tree_size
    if len(evidence.leaves) != size:
        raise VerificationError(f"the commitment covers {size} leaves; the evidence holds {len(evidence.leaves)}")
    tree = CompactRange()
    for leaf in evidence.leaves:
        tree.append(leaf_hash(leaf))
    if size == checkpoint.size:
        if not hmac.compare_digest(tree.root(), checkpoint.root_hash):
            raise VerificationError("the leaves are not the signed tree's")
    else:
        try:
            verify_consistency(size, checkpoint.size, list(evidence.proof), tree.root(), checkpoint.root_hash)
        except ProofError as exc:
            raise VerificationError(f"the leaves are not the signed tree's first {size}: {exc}") from exc
    rebuilt = MemoryMap()
    changes: dict[MapKey, tuple[str, int, int]] = {}
    for index, leaf in enumerate(evidence.leaves):
        named = _named(index, parse_leaf(leaf).body, evidence.facts.get(index))
        if named:
            map_changes([(index, named)], changes)
    rebuilt.update(changes)
    if rebuilt.root == commitment.root and rebuilt.keys == commitment.keys:
        raise VerificationError(f"the leaves give the committed map of size {size}: no misbehaviour shown")
    return (
        f"log {verifier.name} committed, in entry {c.log_index} of its tree of size {checkpoint.size}, to a map of "
        f"its first {size} leaves with root {commitment.root.hex()} ({commitment.keys} keys); those leaves give "
        f"{rebuilt.root.hex()} ({rebuilt.keys} keys)"
    )


def _named(index: int, body: dict[str, Any], facts: bytes | None) -> list[str]:
    """The digests entry ``index`` names, from the fact list its leaf commits to (the log's own commitments and
    entries without facts name none)."""
    summary = body.get("index")
    if MapCommitment.is_commitment(body) or MapCommitment.is_earlier_format(body) or not isinstance(summary, dict):
        return []
    if facts is None:
        if summary.get("factCount") == 0:
            return []
        raise VerificationError(f"the evidence lacks the facts of entry {index}, which names artifacts")
    try:
        return sorted({d for d, _, _ in fact_names(body, facts)})
    except VerificationError as exc:
        raise VerificationError(f"entry {index}: {exc}") from exc


def _bad_entry(evidence: BadEntryEvidence, verifier: Verifier, trust: Trust) -> str:
    """An entry the log committed to that does not verify (see the module docstring)."""
    checkpoint = open_checkpoint(evidence.checkpoint, verifier)
    index, leaf, proof = evidence.entry.log_index, evidence.entry.leaf, list(evidence.entry.inclusion_proof)
    raw = evidence.submission
    try:
        submission = json_loads(b64decode(raw, "submission"), "submission") if isinstance(raw, str) else raw
        coll = Collateral.from_json(evidence.collateral) if evidence.collateral else None
    except (KeyError, TypeError, IndexError, AttributeError) as exc:
        raise FormatError(f"malformed bad-entry evidence: {exc}") from exc
    verify_inclusion(leaf_hash(leaf), index, checkpoint.size, proof, checkpoint.root_hash)
    where = f"log {verifier.name} committed, in its tree of size {checkpoint.size}, to"
    try:
        entry = parse_leaf(leaf)
    except FormatError as exc:
        return f"{where} a leaf at index {index} that is not an entry: {exc}"
    committed = _committed_submission(entry.body, submission, entry.integrated_time, trust)
    named = _named_collateral(entry.body)
    if named is not None and entry.body["tee"].get("simulated") is True and set(trust.tdx_roots) <= {INTEL_ROOT}:
        # The log says this quote is simulated: that it does not chain to Intel's root is no misbehaviour.
        raise VerificationError(
            f"entry {index} records a simulated TDX platform; pin that platform's root with --tdx-root to check it"
        )
    if named is not None and (coll is None or coll.digest != named):
        raise VerificationError(f"the evidence lacks the collateral set {named} that entry {index} names")
    rims, responses = {}, {}
    for digest, text in (evidence.rims or {}).items():
        document = b64decode(text, "a RIM")
        if hashlib.sha256(document).hexdigest() == digest:
            rims[digest] = document
    for digest, text in (evidence.ocsp or {}).items():
        response = b64decode(text, "an OCSP response")
        if hashlib.sha256(response).hexdigest() == digest:
            responses[digest] = response
    try:
        record = entry.tee
    except FormatError:  # a tee the parser refuses: check_entry says so
        record = None
    for gpu in record.gpus if record is not None else ():
        for _, rim_id, _, digest in gpu.rims:
            # A RIM missing from the evidence is the evidence's gap, not the log's fault.
            if digest not in rims:
                raise VerificationError(f"the evidence lacks the RIM {rim_id} ({digest}) that entry {index} records")
        for _, serial, _, digest in gpu.revocation:
            if digest not in responses:
                raise VerificationError(
                    f"the evidence lacks the OCSP response for certificate {serial} ({digest}) that entry {index} "
                    "records"
                )
    if record is not None and record.gpus and record.simulated and set(trust.gpu_device_roots) <= {GPU_ROOT}:
        raise VerificationError(
            f"entry {index} records a simulated GPU; pin its roots with --gpu-device-root and --gpu-rim-root "
            "to check it"
        )
    checked = check_entry(
        index,
        leaf,
        committed,
        lambda digest: coll if digest == named else None,
        trust,
        rim=rims.get,
        ocsp=responses.get,
    )
    if checked.problem is None:
        raise VerificationError(
            f"entry {index} verifies on its own; the stated reason ({evidence.reason}) depends on other "
            "entries (check them with `atlas-log history`)"
        )
    return f"{where} an entry that does not verify: {checked.problem}"


def _named_collateral(body: Any) -> str | None:
    tee = body.get("tee") if isinstance(body, dict) else None
    if not isinstance(tee, dict) or "keyAttestationEntry" in tee:
        return None
    digest = (tee.get("collateral") or {}).get("set") if isinstance(tee.get("collateral"), dict) else None
    return digest if isinstance(digest, str) else None


def _committed_submission(body: dict[str, Any], submission: Any, at: int, trust: Trust) -> dict[str, Any]:
    """The submission rebuilt from only what the leaf ``body`` commits to, or :class:`VerificationError`
    when ``submission`` is not the one the leaf commits to.

    Members the leaf does not commit to (annotations, a bundle's other parts, the tee request's nonce and
    binding) could be changed by whoever wrote the evidence to make an honest entry fail; they are dropped,
    or taken from the leaf.
    """

    def not_committed(what: str) -> VerificationError:
        return VerificationError(f"the submission is not the one the leaf commits to: {what}")

    try:
        if not isinstance(submission, dict):
            raise FormatError("the submission must be a JSON object")
        chain: tuple[bytes, ...] = ()
        if "sigstoreBundle" in submission:
            bundle = parse_bundle(submission["sigstoreBundle"])
            envelope, chain = bundle.envelope, bundle.chain
        else:
            envelope = parse_envelope(submission["dsseEnvelope"])
        material = submission.get("verificationMaterial") or {}
        if not chain and "x509CertificateChain" in material:
            chain = tuple(b64decode(c, "x509CertificateChain") for c in material["x509CertificateChain"])
        recorded = [s["verifier"]["spkiSha256"] for s in body["signatures"]]
        if {"sha256": hashlib.sha256(canonical_json(envelope.to_json())).hexdigest()} != body["envelopeHash"]:
            raise not_committed("its envelope has another hash")
        rebuilt: dict[str, Any] = {"dsseEnvelope": envelope.to_json()}
        if chain:
            certificates = [(s["verifier"].get("certificate") or {}) for s in body["signatures"]]
            committed = any(c.get("chainSha256") == chain_digest(chain) for c in certificates)
            try:
                roots = tuple(x509.load_der_x509_certificate(r) for r in trust.x509_roots)
                certified = signing_certificate(chain, roots, at, trust.x509_eku)
            except (VerificationError, ValueError) as exc:
                # Only a chain the leaf commits to (chainSha256) shows the log admitted it; any other chain
                # may have been broken by whoever wrote the evidence. Without roots nothing can be said.
                if not committed or not trust.x509_roots:
                    raise VerificationError(
                        f"the entry's certificate chain does not verify under the trusted roots ({exc}); the leaf "
                        "does not commit to this chain, so this proves nothing about the log"
                    ) from exc
            else:
                if certified.fingerprint not in recorded:
                    raise not_committed("its certificate is for a key the entry does not record")
                cert = certified.certificate or {}
                if not any(c.get("certSha256") == cert.get("certSha256") for c in certificates):
                    raise not_committed("its signing certificate is not the one the entry records")
                if any("chainSha256" in c for c in certificates) and not committed:
                    raise not_committed("its certificate chain is not the one the entry records")
            rebuilt["verificationMaterial"] = {"x509CertificateChain": [b64encode(c) for c in chain]}
        else:
            keys = {k.fingerprint: k for k in map(_public_key, material["publicKeys"])}
            if not set(recorded) <= set(keys):
                raise not_committed("it lacks a signer key the entry records")
            # One key per signature, in signature order: the leaf records which key verified each signature,
            # and key names (not committed) could otherwise be chosen to make an honest signature look bad.
            spkis = [b64encode(keys[fp].spki) for fp in recorded]
            rebuilt["verificationMaterial"] = {"publicKeys": [{"spki": s} for s in spkis]}
        tee = body.get("tee")
        if isinstance(tee, dict):
            request = {k: tee[k] for k in ("binding", "signatureIndex", "nonce") if k in tee}
            rebuilt["tee"] = {"type": "intel-tdx", **request}
            if "keyAttestationEntry" in tee:
                rebuilt["tee"]["keyAttestationEntry"] = tee["keyAttestationEntry"]
            else:
                quote = submission["tee"]["quote"]
                if tee.get("quoteSha256") not in quote_identities(b64decode(quote, "tee.quote")):
                    raise not_committed("its quote has another hash")
                rebuilt["tee"]["quote"] = quote
        elif tee is not None:
            raise FormatError("the entry's tee record is not an object")
    except (FormatError, KeyError, TypeError, AttributeError) as exc:
        raise VerificationError(f"cannot tell that the submission is the one the leaf commits to: {exc}") from exc
    return rebuilt


def _public_key(member: Any) -> PublicKey:
    if "spki" in member:
        return PublicKey(SpkiDer(b64decode(member["spki"], "publicKeys.spki")))
    return PublicKey.from_pem(member["pem"])
