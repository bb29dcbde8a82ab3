"""What a log answers, parsed strictly into typed values and checked, with no I/O.

Each function takes a JSON answer (or body bytes) as the log served it and returns a frozen value, raising
:class:`~atlas_log.errors.FormatError` when the answer is malformed and a
:class:`~atlas_log.errors.VerificationError` when it does not prove what it claims. Answers that carry inclusion
proofs are verified against the checkpoint they name (opened under the pinned key); what an answer says
beside what its leaves prove is kept apart (``served``), never mixed into the proved values.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from atlas_log._encoding import b64decode
from atlas_log.checkpoint import Checkpoint, open_checkpoint
from atlas_log.disclosure import Revealed
from atlas_log.entry import Entry, parse_leaf
from atlas_log.errors import Error, FormatError, GpuEvidenceError, VerificationError
from atlas_log.gpu.evidence import GpuEvidence, collection_sha256, parse_evidence_items
from atlas_log.history import VerifiedEntry, verify_entries
from atlas_log.merkle import HASH_SIZE, LeafHash, leaf_hash, verify_inclusion
from atlas_log.note import Verifier
from atlas_log.tdx.collateral import Collateral
from atlas_log.tdx.quote import parse_quote
from atlas_log.tee import GpuRecord
from atlas_log.tiles import TILE_WIDTH, parse_entry_bundle

__all__ = [
    "Disclosed",
    "EntryBundle",
    "EntryEvidence",
    "InclusionProof",
    "LogInfo",
    "LoggedEntry",
    "SearchFilter",
    "Submissions",
    "Tile",
    "VerifiedSearch",
    "parse_collateral",
    "parse_consistency",
    "parse_evidence",
    "parse_inclusion",
    "parse_log_info",
    "parse_submissions",
    "parse_tile",
    "served_leaf",
    "served_submission",
    "verify_entry",
    "verify_search",
]


def _int(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise FormatError(f"{what} must be a non-negative integer, not {value!r}")
    return value


def _str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise FormatError(f"{what} must be a string, not {type(value).__name__}")
    return value


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise FormatError(f"{what} must be a JSON object")
    return value


def _hashes(value: Any, what: str) -> tuple[bytes, ...]:
    if not isinstance(value, list):
        raise FormatError(f"{what} must be a list of base64 hashes")
    out = tuple(b64decode(_str(h, what), what) for h in value)
    if any(len(h) != HASH_SIZE for h in out):
        raise FormatError(f"every hash in {what} must be {HASH_SIZE} bytes")
    return out


# --- log metadata ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LogInfo:
    """``GET /api/v1/log``: what the log announces about itself. None of it is signed: pin ``verifier_key``
    out of band, and trust sizes and roots only from a checkpoint opened under that key."""

    origin: str
    verifier_key: str
    tree_size: int
    root_hash: bytes
    attestation: Mapping[str, Any]
    frozen_checkpoint: bytes | None


def parse_log_info(answer: Any) -> LogInfo:
    obj = _object(answer, "the log's description")
    try:
        frozen = obj.get("frozen")
        return LogInfo(
            _str(obj["origin"], "origin"),
            _str(obj["verifierKey"], "verifierKey"),
            _int(obj["treeSize"], "treeSize"),
            b64decode(_str(obj["rootHash"], "rootHash"), "rootHash"),
            _object(obj.get("attestation") or {}, "attestation"),
            None if frozen is None else _str(_object(frozen, "frozen")["checkpoint"], "frozen.checkpoint").encode(),
        )
    except KeyError as exc:
        raise FormatError(f"the log's description has no {exc}") from exc


# --- proofs --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InclusionProof:
    """``GET /api/v1/proofs/inclusion``: the leaf hash the log holds at ``log_index`` and the audit path to the
    root of the tree of ``tree_size`` leaves (unverified until checked against a checkpoint's root)."""

    log_index: int
    tree_size: int
    leaf_hash: LeafHash
    hashes: tuple[bytes, ...]

    def verify(self, checkpoint: Checkpoint) -> None:
        """Check the path leads to ``checkpoint``'s root (:class:`~atlas_log.errors.ProofError` otherwise)."""
        if checkpoint.size != self.tree_size:
            raise VerificationError(f"the proof is for tree size {self.tree_size}, not {checkpoint.size}")
        verify_inclusion(self.leaf_hash, self.log_index, self.tree_size, list(self.hashes), checkpoint.root_hash)


def parse_inclusion(answer: Any, index: int, tree_size: int) -> InclusionProof:
    """An inclusion proof answer, which must be for ``index`` in ``tree_size`` as asked (when it says)."""
    obj = _object(answer, "inclusion proof")
    if obj.get("logIndex", index) != index or obj.get("treeSize", tree_size) != tree_size:
        raise FormatError(f"the log answered a proof for another leaf or size than {index} in {tree_size}")
    try:
        lh = b64decode(_str(obj["leafHash"], "leafHash"), "leafHash")
        hashes = _hashes(obj["hashes"], "hashes")
    except KeyError as exc:
        raise FormatError(f"inclusion proof has no {exc}") from exc
    if len(lh) != HASH_SIZE:
        raise FormatError("leafHash must be 32 bytes")
    return InclusionProof(index, tree_size, LeafHash(lh), hashes)


def parse_consistency(answer: Any) -> list[bytes]:
    """The hashes of a consistency proof answer (checked by the caller between two signed roots)."""
    obj = _object(answer, "consistency proof")
    if "hashes" not in obj:
        raise FormatError("consistency proof has no 'hashes'")
    return list(_hashes(obj["hashes"], "hashes"))


# --- entries -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoggedEntry:
    """An entry proved included at ``log_index`` in ``checkpoint``'s tree.

    :attr:`entry` is what the leaf says (proved). ``submission`` is the submission the log serves beside it, an
    object or, when the log cannot parse what it stored, its bytes: it is *not* proved by the leaf (check it
    with :func:`~atlas_log.receipt.verify_leaf_for`). ``served`` is the whole answer as served.
    """

    log_index: int
    leaf: bytes
    leaf_hash: LeafHash
    checkpoint: Checkpoint
    inclusion_proof: tuple[bytes, ...]
    submission: dict[str, Any] | bytes | None
    served: Mapping[str, Any]

    @property
    def entry(self) -> Entry:
        """The entry the leaf encodes (:class:`~atlas_log.errors.FormatError` for a leaf that is not one: the
        leaf is proved included even then, which is what evidence against the log needs)."""
        return parse_leaf(self.leaf)


@dataclass(frozen=True, slots=True)
class Disclosed:
    """A confidential entry as a grant holder sees it: ``logged`` proved included, and ``revealed`` its
    statement with the hidden values put back, each proved to be the one committed."""

    logged: LoggedEntry
    revealed: Revealed


def served_leaf(answer: Any) -> bytes:
    """The leaf bytes of an entry answer (``GET /api/v1/entries/{i}``)."""
    obj = _object(answer, "entry")
    if not isinstance(obj.get("leaf"), str):
        raise FormatError("the log served no leaf for this entry")
    return b64decode(obj["leaf"], "leaf")


def served_submission(answer: Any) -> dict[str, Any] | bytes | None:
    """The submission of an entry answer: an object, or (served as base64) the bytes the log stored."""
    submission = _object(answer, "entry").get("submission")
    if isinstance(submission, str):
        return b64decode(submission, "submission")
    if submission is not None and not isinstance(submission, dict):
        raise FormatError("an entry's submission must be an object or base64 bytes")
    return submission


def verify_entry(answer: Any, index: int, proof: InclusionProof, checkpoint: Checkpoint) -> LoggedEntry:
    """The entry answer for ``index``, proved included in ``checkpoint`` by ``proof``: the log must hold the
    served leaf at that index (:class:`~atlas_log.errors.VerificationError` otherwise)."""
    leaf = served_leaf(answer)
    lh = LeafHash(leaf_hash(leaf))
    if proof.log_index != index or proof.leaf_hash != lh:
        raise VerificationError(f"log serves a different leaf at index {index}")
    proof.verify(checkpoint)
    return LoggedEntry(index, leaf, lh, checkpoint, proof.hashes, served_submission(answer), dict(answer))


@dataclass(frozen=True, slots=True)
class Submissions:
    """``GET /api/v1/submissions``: the submissions entries ``start``, ``start + 1``, … were admitted from, as
    served: objects, or the bytes of one the log stored but cannot serve as JSON. Not proved here: a replay
    rebuilds each entry from its submission and compares leaves."""

    start: int
    items: tuple[dict[str, Any] | bytes, ...]


def parse_submissions(answer: Any, start: int, count: int) -> Submissions:
    obj = _object(answer, "submissions")
    items = obj.get("submissions")
    if obj.get("start", start) != start or not isinstance(items, list):
        raise FormatError("the log's submissions answer has no 'submissions' list for the range asked")
    if len(items) != count or not all(isinstance(s, dict) for s in items):
        raise FormatError(f"the log served {len(items)} submissions, not {count} objects")
    return Submissions(start, tuple(items))


# --- tiles ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tile:
    """A C2SP tlog-tiles hash tile: ``width`` hashes of level ``level``, tile ``index``."""

    level: int
    index: int
    width: int
    hashes: tuple[bytes, ...]


def parse_tile(data: bytes, level: int, index: int, width: int = TILE_WIDTH) -> Tile:
    """A hash tile body, which must hold exactly ``width`` hashes (C2SP tlog-tiles)."""
    if len(data) != width * HASH_SIZE:
        raise FormatError(f"tile {level}/{index} is {len(data)} bytes, not {width} hashes")
    return Tile(level, index, width, tuple(data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)))


@dataclass(frozen=True, slots=True)
class EntryBundle:
    """A C2SP tlog-tiles entry bundle: the leaves of entries ``index * 256`` onwards."""

    index: int
    width: int
    leaves: tuple[bytes, ...]

    @property
    def leaf_hashes(self) -> tuple[LeafHash, ...]:
        return tuple(LeafHash(leaf_hash(leaf)) for leaf in self.leaves)

    @classmethod
    def from_bytes(cls, data: bytes, index: int, width: int = TILE_WIDTH) -> EntryBundle:
        """Entry bundle ``index`` from its body, which must hold exactly ``width`` entries."""
        leaves = parse_entry_bundle(data)
        if len(leaves) != width:
            raise FormatError(f"entry bundle {index} holds {len(leaves)} entries, not {width}")
        return cls(index, width, tuple(leaves))


# --- attestation evidence -------------------------------------------------------------------------------------------


def parse_collateral(obj: Any, digest: str | None = None) -> Collateral:
    """A collateral set from its JSON form (base64 members, as the log serves it); with ``digest``, it must be
    the set of that digest (what entries record as ``tee.collateral.set``)."""
    collateral = Collateral.from_json(_object(obj, "collateral"))
    if digest is not None and collateral.digest != digest:
        raise VerificationError(f"the log served collateral {collateral.digest} for digest {digest}")
    return collateral


@dataclass(frozen=True, slots=True)
class EntryEvidence:
    """``GET /api/v1/entries/{i}/evidence``: an entry's raw TDX quote and the exact collateral it was verified
    with, both proved to be the ones its (included) leaf records. ``verdict`` is the leaf's ``tee`` record;
    ``trusted_roots`` is what the log says it trusted (re-verify under your own)."""

    log_index: int
    quote: bytes
    verified_at: int
    trusted_roots: tuple[str, ...]
    collateral: Collateral
    verdict: Mapping[str, Any]
    # A composite entry's GPU evidence as submitted, and the RIMs and OCSP responses (by SHA-256) its GPU records
    # name; each proved to be what the leaf commits to. ``gpu_roots``: the log's word on the roots it trusted.
    gpus: tuple[GpuEvidence, ...] = ()
    rims: Mapping[str, bytes] = field(default_factory=dict)
    ocsp: Mapping[str, bytes] = field(default_factory=dict)
    gpu_roots: Mapping[str, str] = field(default_factory=dict)
    gpu_nonce: bytes | None = None  # the nonce each GPU report must carry, from inputs the leaf commits to


def parse_evidence(answer: Any, entry: LoggedEntry) -> EntryEvidence:
    """The evidence answer for ``entry`` (already proved included): its quote must hash to the leaf's
    ``quoteSha256`` (with or without trailing padding), its collateral to the leaf's collateral set, and its
    verification time must be the entry's integration time."""
    obj = _object(answer, "evidence")
    tee = entry.entry.body.get("tee")
    if not isinstance(tee, dict) or "quoteSha256" not in tee:
        raise VerificationError(f"entry {entry.log_index} records no quote of its own")
    try:
        quote = b64decode(_str(obj["quote"], "quote"), "quote")
        collateral = parse_collateral(obj["collateral"], tee.get("collateral", {}).get("set"))
        at = _int(obj["verifiedAt"], "verifiedAt")
        roots = tuple(_str(r, "trustedRoots") for r in obj.get("trustedRoots", []))
    except KeyError as exc:
        raise FormatError(f"evidence has no {exc}") from exc
    hashes = {hashlib.sha256(quote).hexdigest(), hashlib.sha256(parse_quote(quote).raw).hexdigest()}
    if tee["quoteSha256"] not in hashes:
        raise VerificationError(f"the quote served is not the one entry {entry.log_index} records")
    if obj.get("logIndex", entry.log_index) != entry.log_index or at != entry.entry.integrated_time:
        raise VerificationError(f"the evidence is not for entry {entry.log_index} as it was admitted")
    if "gpuEvidenceSha256" not in tee:
        return EntryEvidence(entry.log_index, quote, at, roots, collateral, tee)
    parts = _gpu_evidence(obj, tee, entry.log_index)
    return EntryEvidence(entry.log_index, quote, at, roots, collateral, tee, *parts, _gpu_nonce(entry, tee))


def _gpu_nonce(entry: LoggedEntry, tee: dict[str, Any]) -> bytes | None:
    """The nonce a composite entry's GPU reports must carry, derived from the submission served beside it once
    what it is derived from is the leaf's: the payload and its type (``paeHash``), the attesting signer's key
    (its ``spkiSha256``) and the tee nonce. None when the submission does not bear that out (it is not proved)."""
    from atlas_log.submission import expected_gpu_nonce, parse_submission, parse_tee

    body = entry.entry.body
    try:
        sub = parse_submission(entry.submission, entry.entry.integrated_time)  # type: ignore[arg-type]
        request = parse_tee(sub.tee, len(sub.signers))
        signer = sub.signers[request.signature_index]
    except (Error, ValueError, TypeError, IndexError):
        return None
    if (
        not isinstance(body.get("paeHash"), dict)
        # The PAE covers the payload type too: the nonce is derived from both.
        or hashlib.sha256(sub.envelope.pae()).hexdigest() != body["paeHash"].get("sha256")
        or signer.fingerprint != tee.get("spkiSha256")
        or request.nonce.hex() != tee.get("nonce")
    ):
        return None
    return expected_gpu_nonce(request, sub.envelope, signer)


def _gpu_evidence(
    obj: dict[str, Any], tee: dict[str, Any], index: int
) -> tuple[tuple[GpuEvidence, ...], dict[str, bytes], dict[str, bytes], dict[str, str]]:
    """A composite entry's GPU parts of an evidence answer, each proved against the leaf's ``tee`` record: the
    evidence collection hashes to its ``gpuEvidenceSha256``, and each RIM and OCSP response its GPU records name
    is present and hashes to its name."""
    try:
        gpus = tuple(parse_evidence_items(obj["gpus"], "gpus"))
    except KeyError as exc:
        raise FormatError(f"evidence has no {exc}") from exc
    except GpuEvidenceError as exc:
        raise FormatError(exc.message) from exc
    if collection_sha256(gpus).hex() != tee["gpuEvidenceSha256"]:
        raise VerificationError(f"the GPU evidence served is not the one entry {index} records")
    recorded = tee.get("gpus")
    if not isinstance(recorded, list):
        raise FormatError(f"entry {index}'s leaf records no list of GPUs beside its GPU evidence")
    records = [GpuRecord.from_json(g) for g in recorded]
    served: dict[str, dict[str, bytes]] = {}
    for member, named in (
        ("rims", {d for g in records for *_, d in g.rims}),
        ("ocsp", {d for g in records for *_, d in g.revocation}),
    ):
        given = obj.get(member) or {}
        if not isinstance(given, dict):
            raise FormatError(f"evidence {member} must map SHA-256 to base64")
        served[member] = {}
        for digest in sorted(named):
            data = b64decode(_str(given.get(digest), f"{member}.{digest}"), f"{member}.{digest}")
            if hashlib.sha256(data).hexdigest() != digest:
                raise VerificationError(f"the {member} document {digest} served for entry {index} is another one")
            served[member][digest] = data
    given_roots = obj.get("gpuRoots") or {}
    gpu_roots = {k: v for k, v in given_roots.items() if isinstance(v, str)} if isinstance(given_roots, dict) else {}
    return gpus, served["rims"], served["ocsp"], gpu_roots


# --- search --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SearchFilter:
    """The filters of ``GET /api/v1/search``; ``signer`` is ``sha256:<hex>`` of a signer's SPKI; entries are
    dated ``since <= integratedTime < until``."""

    name: str | None = None
    predicate_type: str | None = None
    signer: str | None = None
    since: int | None = None
    until: int | None = None

    def params(self) -> dict[str, str | int | None]:
        return {
            "name": self.name,
            "predicateType": self.predicate_type,
            "signer": self.signer,
            "from": self.since,
            "to": self.until,
        }


@dataclass(frozen=True, slots=True)
class VerifiedSearch:
    """One page of search results, each entry included in ``checkpoint``'s tree and, as far as its leaf
    says, matching the filter (predicate type, signer, time; artifact names are not in the leaf and are the
    log's word). ``next_before`` is the cursor of the next (older) page, or None.

    A search is an index lookup: names, signers and predicate types are not keys of the verifiable map, so
    nothing proves the list holds every match (``complete`` is always False, ``incomplete`` says why). For a
    complete answer, take a found artifact's history or lineage with its completeness proof."""

    checkpoint: Checkpoint
    entries: tuple[VerifiedEntry, ...]
    next_before: int | None

    complete: ClassVar[bool] = False
    incomplete: ClassVar[str] = (
        "a search is an unproven index lookup: each entry is proved in the log, but not that no match is missing; "
        "an artifact's history proves completeness"
    )


def _signers(entry: Entry) -> set[str]:
    sigs = entry.body.get("signatures")
    return {
        f"sha256:{s['verifier']['spkiSha256']}"
        for s in (sigs if isinstance(sigs, list) else [])
        if isinstance(s, dict) and isinstance(s.get("verifier"), dict) and "spkiSha256" in s["verifier"]
    }


def verify_search(answer: Any, verifier: Verifier, wanted: SearchFilter, before: int | None = None) -> VerifiedSearch:
    """Verify a search answer: the checkpoint under ``verifier``, every entry's inclusion, newest first below
    ``before``, each matching ``wanted`` as far as its leaf says, and the cursor."""
    obj = _object(answer, "search")
    try:
        cp = open_checkpoint(_str(obj["checkpoint"], "checkpoint").encode(), verifier)
        if obj["treeSize"] != cp.size:
            raise VerificationError("the answer's treeSize is not its checkpoint's size")
        entries = verify_entries(obj["entries"], cp, None)
        next_before = obj.get("next")
    except KeyError as exc:
        raise FormatError(f"malformed search answer: no {exc}") from exc
    if any(a.log_index <= b.log_index for a, b in itertools.pairwise(entries)):
        raise VerificationError("search results are not strictly newest first")
    if entries and before is not None and entries[0].log_index >= before:
        raise VerificationError(f"entry {entries[0].log_index} is not older than the cursor {before}")
    for v in entries:
        body, t = v.entry.body, v.entry.integrated_time
        summary = body.get("index")
        index: dict[str, Any] = summary if isinstance(summary, dict) else {}
        if wanted.predicate_type is not None and index.get("predicateType") != wanted.predicate_type:
            raise VerificationError(f"entry {v.log_index} is not of predicate type {wanted.predicate_type}")
        if wanted.signer is not None and wanted.signer.lower() not in _signers(v.entry):
            raise VerificationError(f"entry {v.log_index} is not signed by {wanted.signer}")
        if (wanted.since is not None and t < wanted.since) or (wanted.until is not None and t >= wanted.until):
            raise VerificationError(f"entry {v.log_index} is dated {t}, outside the range asked")
    if next_before is not None and (not entries or next_before != entries[-1].log_index):
        raise VerificationError(f"the answer's next cursor {next_before!r} is not the index of its oldest entry")
    return VerifiedSearch(cp, tuple(entries), next_before)
