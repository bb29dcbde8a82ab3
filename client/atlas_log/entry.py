"""The canonical log entry: what a leaf commits to, encoded as RFC 8785 (JCS) JSON.

``body`` describes the submission (hashes of the envelope and PAE, the verified signers, the TEE verdict).
Its deduplication key, ``entryId``, is only what was signed and who signed it (PAE digest and the set of signer
keys; see :func:`entry_id`): a resubmission that differs in anything unsigned is the entry already logged.
The leaf adds the integration time: ``leaf = JCS({"body": body, "integratedTime": t})`` and
``leafHash = SHA-256(0x00 ‖ leaf)``.
Anyone holding the raw envelope can recompute the body and check it against the leaf.

:func:`build_entry` is the one builder: the log admits entries with it, and monitors re-verify leaves with it
(:mod:`atlas_log.reverify`), from a parsed submission and the attestation established for it
(:mod:`atlas_log.tee`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import rfc8785

from atlas_log._encoding import b64encode, json_loads
from atlas_log.dsse import Envelope, PublicKey
from atlas_log.errors import FormatError, VerificationError
from atlas_log.gpu.evidence import collection_sha256
from atlas_log.intoto import Extraction
from atlas_log.tdx.quote import attestation_id
from atlas_log.tee import Attestation, OwnQuote, TeeRecord

if TYPE_CHECKING:
    from atlas_log.submission import ParsedSubmission

__all__ = [
    "API_VERSION",
    "LINKED_ROLES",
    "MAX_LEAF_SIZE",
    "BuiltEntry",
    "Entry",
    "IndexRow",
    "IndexSummary",
    "build_body",
    "build_entry",
    "canonical_json",
    "encode_body",
    "encode_leaf",
    "entry_id",
    "fact_names",
    "facts_json",
    "index_summary",
    "leaf_links",
    "legacy_entry_id",
    "parse_leaf",
]

API_VERSION = "atlas-log/v1"
MAX_LEAF_SIZE = 65_535  # an entry bundle prefixes each entry with a uint16 length (tlog-tiles)


_MAX_SAFE_INT = (1 << 53) - 1

ENTRY_ID_TAG = b"atlas-log/entry-id/v2\n"
ATTESTED_MARK = b"tdx\n"  # ends the identity of an entry that carries a TDX attestation

# The v1 identity (receipts issued before v2 carry it): the body with its TEE verdict reduced to these members.
_TEE_IDENTITY_V1 = ("type", "binding", "signatureIndex", "spkiSha256", "nonce", "quoteSha256", "keyAttestationEntry")


def _hex_digest(value: Any, what: str) -> str:
    if not isinstance(value, str) or len(value) != 64 or value.strip("0123456789abcdef"):
        raise FormatError(f"entry body {what} must be 64 lowercase hex digits")
    return value


def entry_id(body: dict[str, Any]) -> bytes:
    """The deduplication key: *what was signed* and *who signed it*, nothing a third party can change.

    ``SHA-256("atlas-log/entry-id/v2\\n" ‖ paeSha256 ‖ "\\n" ‖ for each distinct signer SPKI SHA-256, in
    ascending order: spkiSha256 ‖ "\\n" ‖ ["tdx\\n" when the entry is attested])``, the digests in lowercase
    hex. PAE covers the payload type and the payload (DSSE protocol), so one signed statement by one signer set
    is one entry (one attested, one not, on a log that admits both), whatever its ``keyid``
    hints, signature encodings (ECDSA (r, n - s), BER), key format (PEM or DER), JSON layout, or quote (a
    fresh quote attests the same statement again). Raises :class:`FormatError` for a body without them.
    """
    try:
        pae = _hex_digest(body["paeHash"]["sha256"], "paeHash.sha256")
        signers = {_hex_digest(s["verifier"]["spkiSha256"], "spkiSha256") for s in body["signatures"]}
    except (KeyError, TypeError) as exc:
        raise FormatError("entry body must name its paeHash and each signature's verifier.spkiSha256") from exc
    if not signers:
        raise FormatError("entry body must have at least one signature")
    identity = ENTRY_ID_TAG + pae.encode() + b"\n" + b"".join(f.encode() + b"\n" for f in sorted(signers))
    if isinstance(body.get("tee"), dict):
        # Attested and unattested are distinct entries: on a log that admits both, whoever sees a signed
        # envelope first cannot pre-empt its TDX attestation by logging it without one.
        identity += ATTESTED_MARK
    return hashlib.sha256(identity).digest()


def legacy_entry_id(body: dict[str, Any]) -> bytes:
    """The v1 ``entryId`` (SHA-256 of the canonical body, its ``tee`` reduced to what the request determined),
    which receipts issued before the v2 identity carry; kept so that those receipts still verify."""
    identity = dict(body)
    if isinstance(body.get("tee"), dict):
        identity["tee"] = {k: body["tee"][k] for k in _TEE_IDENTITY_V1 if k in body["tee"]}
    return hashlib.sha256(canonical_json(identity)).digest()


def encode_body(body: dict[str, Any]) -> tuple[bytes, bytes]:
    """``(canonical body, entryId)``: the RFC 8785 bytes the leaf embeds, and :func:`entry_id`."""
    return canonical_json(body), entry_id(body)


def _plain(obj: Any) -> bool:
    """True when ``obj`` holds only values whose RFC 8785 form equals Python's sorted compact JSON:
    objects with ASCII keys (so code-point order is UTF-16 order), arrays, strings, booleans, null, and
    integers within the IEEE 754 safe range. Floats take the general (slower) path."""
    # Iterative, by exact type (a subclass takes the general path): every leaf a client verifies is walked.
    stack = [obj]
    while stack:
        value = stack.pop()
        kind = type(value)
        if kind is str or value is None or kind is bool:
            continue
        if kind is int:
            if not -_MAX_SAFE_INT <= value <= _MAX_SAFE_INT:
                return False
        elif kind is dict:
            for k in value:
                if type(k) is not str or not k.isascii():
                    return False
            stack.extend(value.values())
        elif kind is list or kind is tuple:
            stack.extend(value)
        else:
            return False
    return True


def canonical_json(obj: Any) -> bytes:
    """RFC 8785 canonical JSON bytes.

    For the values entries are made of, Python's compact, key-sorted, non-ASCII-escaping JSON is byte-for-byte
    the RFC 8785 form (same string escapes: the short forms, else lowercase ``\\u00xx``), and far faster than
    the general implementation, which handles everything else.
    """
    try:
        if _plain(obj):
            return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode("utf-8")
        return rfc8785.dumps(obj)
    except (rfc8785.CanonicalizationError, TypeError, ValueError, UnicodeEncodeError, RecursionError) as exc:
        raise FormatError(f"value cannot be canonicalised as JSON: {exc}") from exc


def _sha256(data: bytes) -> dict[str, str]:
    return {"sha256": hashlib.sha256(data).hexdigest()}


LINKED_ROLES = ("subject", "evaluated", "material", "eval_data")


@dataclass(frozen=True, slots=True)
class IndexSummary:
    """What the leaf commits to about a payload's extraction: subject and material digests, and a digest of all
    facts (with their roles, names and JSON paths), which anyone can recompute from the stored payload.
    ``statement_predicate_type`` is the body's top-level ``predicateType`` (the in-toto statement's)."""

    predicate_type: str | None
    legacy: bool
    subjects: tuple[str, ...]
    materials: tuple[str, ...]
    fact_count: int
    facts_sha256: str
    statement_predicate_type: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "predicateType": self.predicate_type,
            "legacy": self.legacy,
            "subjects": list(self.subjects),
            "materials": list(self.materials),
            "factCount": self.fact_count,
            "factsSha256": self.facts_sha256,
        }


def facts_json(extraction: Extraction) -> bytes:
    """The RFC 8785 bytes of an extraction's facts, whose SHA-256 a leaf commits to (``factsSha256``): the
    pre-image a log serves beside a leaf to prove the digests it names in roles the leaf does not list
    (components, byproducts, builder dependencies, deployments)."""
    # Facts hold only strings and lists of strings under fixed ASCII keys: their RFC 8785 form is the compact,
    # sorted JSON, with no type walk needed.
    facts = [f.to_json() for f in extraction.facts]
    return json.dumps(facts, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode("utf-8")


def fact_names(body: dict[str, Any], facts: bytes) -> frozenset[tuple[str, str, str]]:
    """The ``(digest, role, JSON path)`` triples of ``facts``, the bytes whose SHA-256 the entry ``body`` commits
    to as its ``index.factsSha256`` (:func:`facts_json`). Raises :class:`VerificationError` when they are not
    those bytes and :class:`FormatError` when they are not a fact list."""
    index = body.get("index")
    want = index.get("factsSha256") if isinstance(index, dict) else None
    if not isinstance(want, str):
        raise VerificationError("the entry commits to no facts (its body has no index.factsSha256)")
    if not hmac.compare_digest(hashlib.sha256(facts).hexdigest(), want):
        raise VerificationError("the facts given are not the ones the entry commits to (factsSha256 differs)")
    parsed: Any = json_loads(facts, "facts")
    names: set[tuple[str, str, str]] = set()
    if not isinstance(parsed, list):
        raise FormatError("facts must be a list")
    for fact in parsed:
        if not isinstance(fact, dict) or not all(isinstance(fact.get(k), str) for k in ("role", "path")):
            raise FormatError("each fact must hold a role, a JSON path and a list of digests")
        digests = fact.get("digests")
        if not isinstance(digests, list):
            raise FormatError("each fact must hold a role, a JSON path and a list of digests")
        names.update((d, fact["role"], fact["path"]) for d in digests if isinstance(d, str))
    return frozenset(names)


def index_summary(extraction: Extraction) -> IndexSummary:
    """The :class:`IndexSummary` of an extraction."""
    facts = facts_json(extraction)
    return IndexSummary(
        predicate_type=extraction.predicate_type,
        legacy=extraction.legacy,
        subjects=tuple(extraction.digests("subject", "evaluated")),
        materials=tuple(extraction.digests("material", "eval_data")),
        fact_count=len(extraction.facts),
        facts_sha256=hashlib.sha256(facts).hexdigest(),
        statement_predicate_type=extraction.statement_predicate_type,
    )


def _verifier(key: PublicKey, chain_digests: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"spkiSha256": key.fingerprint}
    if key.certificate:
        cert = key.certificate if chain_digests else {k: v for k, v in key.certificate.items() if k != "chainSha256"}
        out["certificate"] = cert
    return out


def build_body(
    envelope: Envelope,
    signers: Sequence[PublicKey],
    tee: TeeRecord | None,
    index: IndexSummary,
    *,
    chain_digests: bool = True,
) -> dict[str, Any]:
    """The entry body for a verified envelope; ``signers[i]`` is the key that verified signature ``i``;
    ``index`` is what was extracted from the payload. ``chain_digests=False`` leaves out the certificate chain
    digests (``chainSha256``), as entries logged before they were recorded did."""
    if len(signers) != len(envelope.signatures):
        raise ValueError("one signer per signature is required")
    return {
        "apiVersion": API_VERSION,
        "payloadType": envelope.payload_type,
        "payloadHash": _sha256(envelope.payload),
        "paeHash": _sha256(envelope.pae()),
        # An envelope's JSON is only ASCII keys and strings: its RFC 8785 form needs no type walk.
        "envelopeHash": _sha256(
            json.dumps(envelope.to_json(), ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()
        ),
        "predicateType": index.statement_predicate_type,
        "signatures": [
            {"keyid": s.keyid, "sig": b64encode(s.sig), "verifier": _verifier(k, chain_digests)}
            for s, k in zip(envelope.signatures, signers, strict=True)
        ],
        "tee": tee.to_json() if tee is not None else None,
        "index": index.to_json(),
    }


@dataclass(frozen=True, slots=True)
class IndexRow:
    """One row of the log's artifact index: an artifact digest (``alg:hex``) an entry names, in which role,
    under which name and version (and ML role: what it is to the step), and the JSON path it was read from.
    Signer keys are rows too (role ``signer``, digest ``sha256:<SPKI SHA-256>``), so "everything this key signed"
    is one lookup."""

    digest: str
    role: str
    name: str | None
    path: str
    version: str | None
    ml_role: str | None = None

    def record(self, index: int) -> tuple[int, str, str, str | None, str, str | None, str | None]:
        """The row as the artifact index stores it for the entry at ``index``."""
        return (index, self.digest, self.role, self.name, self.path, self.version, self.ml_role)


@dataclass(frozen=True, slots=True)
class BuiltEntry:
    """An admitted submission as the log appends it (everything but its position): the canonical body and its
    ``entry_id``, the digests whose back-links the leaf carries (``linked``), the index ``rows``, the
    extraction's ``predicate_type``, the ``attestation_id`` of its own quote (None without one: see
    :func:`atlas_log.tdx.quote.attestation_id`), and the ``tee`` record."""

    body: bytes
    entry_id: bytes
    linked: tuple[str, ...]
    rows: tuple[IndexRow, ...]
    predicate_type: str | None
    attestation_id: bytes | None
    tee: TeeRecord | None

    def leaf(self, integrated_time: int, links: dict[str, int | None]) -> bytes:
        """The leaf at ``integrated_time`` with these back-links (:func:`encode_leaf`)."""
        return encode_leaf(self.body, integrated_time, links)

    def leaf_size_bound(self) -> int:
        """An upper bound on the leaf's size in bytes, whatever its integration time and back-links."""
        # Measured in encoded bytes (a digest's JSON form may be longer than its characters).
        return len(self.body) + sum(len(canonical_json(d)) + 20 for d in self.linked) + 64


def build_entry(
    sub: ParsedSubmission, attestation: Attestation | None = None, *, chain_digests: bool = True
) -> BuiltEntry:
    """The entry for a verified submission and the attestation admission established for it (None:
    unattested). The log builds its entries with this function, and a monitor replaying the log rebuilds them
    with it, so the two cannot drift apart. Pure: no I/O, no clock. ``chain_digests``: see :func:`build_body`.
    """
    ex = sub.extraction
    tee: TeeRecord | None = None
    aid: bytes | None = None
    if attestation is not None:
        request = attestation.request
        tee = TeeRecord(
            binding=request.binding,
            signature_index=request.signature_index,
            spki_sha256=sub.signers[request.signature_index].fingerprint,
            nonce=request.nonce,
            simulated=attestation.simulated,
            evidence=attestation.evidence,
            nonce_checkpoint_size=attestation.nonce_checkpoint_size,
            gpu_evidence_sha256=collection_sha256(request.gpus).hex() if request.gpus else None,
            gpus=attestation.gpus,
        )
        if isinstance(attestation.evidence, OwnQuote) and request.quote is not None:
            aid = attestation_id(request.quote)
    body, eid = encode_body(build_body(sub.envelope, sub.signers, tee, index_summary(ex), chain_digests=chain_digests))
    rows = [IndexRow(f"{a}:{h}", f.role, f.name, f.path, f.version, f.ml_role) for f in ex.facts for a, h in f.digests]
    # Signer keys are indexed like artifacts, so "everything this key signed" is one lookup.
    rows += [
        IndexRow(f"sha256:{k.fingerprint}", "signer", None, f"$.signatures[{i}]", None)
        for i, k in enumerate(sub.signers)
    ]
    return BuiltEntry(body, eid, tuple(ex.digests(*LINKED_ROLES)), tuple(rows), ex.predicate_type, aid, tee)


@dataclass(frozen=True, slots=True)
class Entry:
    """A log entry: its body, integration time, and back-links, with the derived identifiers.

    ``links`` maps each artifact digest the entry names as subject or material (``alg:hex``) to the log index
    of the previous entry naming it (``None`` for the first): the chain that lets a reader of an artifact's
    history detect an entry dropped from the middle. It depends on the log's position, so it sits beside the
    body, outside the deduplication key.
    """

    body: dict[str, Any]
    integrated_time: int
    links: dict[str, int | None] | None = None

    @property
    def tee(self) -> TeeRecord | None:
        """The body's ``tee`` record (None: unattested); raises :class:`FormatError` for a malformed one."""
        tee = self.body.get("tee")
        return None if tee is None else TeeRecord.from_json(tee)

    @property
    def entry_id(self) -> bytes:
        """The deduplication key of the body (:func:`entry_id`)."""
        return self.encode()[0]

    def leaf(self) -> bytes:
        """The leaf bytes (RFC 8785 JSON); raises :class:`FormatError` beyond :data:`MAX_LEAF_SIZE`."""
        return encode_leaf(canonical_json(self.body), self.integrated_time, self.links)

    def encode(self) -> tuple[bytes, bytes]:
        """``(entryId, leaf)`` from one canonicalisation of the body."""
        body, eid = encode_body(self.body)
        return eid, encode_leaf(body, self.integrated_time, self.links)


def encode_leaf(body: bytes, integrated_time: int, links: dict[str, int | None] | None) -> bytes:
    """The leaf from the body's canonical bytes: JCS of ``{"body", "integratedTime"[, "links"]}`` (keys in order)."""
    if isinstance(integrated_time, bool) or not 0 <= integrated_time <= _MAX_SAFE_INT:
        raise FormatError("integratedTime must be a non-negative safe integer")
    data = b'{"body":' + body + b',"integratedTime":' + str(integrated_time).encode()
    if links is not None:
        data += b',"links":' + canonical_json(links)
    data += b"}"
    if len(data) > MAX_LEAF_SIZE:
        raise FormatError(f"entry leaf is {len(data)} bytes, more than {MAX_LEAF_SIZE}")
    return data


_LINKS_MEMBER = b',"links":'


def leaf_links(leaf: bytes) -> dict[str, int | None] | None:
    """The ``links`` of a leaf this log's sequencer wrote (canonical: :func:`encode_leaf`), without parsing its
    body: in canonical JSON a string holds no unescaped quote, so the last ``,"links":`` is the member itself.
    For the log's own derived data (the map); anything verifying leaves from elsewhere uses :func:`parse_leaf`.
    None for a leaf without links (an older format); raises :class:`FormatError` for malformed ones."""
    at = leaf.rfind(_LINKS_MEMBER)
    if at < 0:
        return None
    if not leaf.endswith(b"}"):
        raise FormatError("leaf is not a JSON object")
    links = json_loads(leaf[at + len(_LINKS_MEMBER) : -1], "leaf links")
    if not isinstance(links, dict) or not all(
        v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 0) for v in links.values()
    ):
        raise FormatError("leaf links must map digests to earlier log indices or null")
    return links


def parse_leaf(leaf: bytes) -> Entry:
    """Parse leaf bytes back into an :class:`Entry`, demanding that they are exactly canonical."""
    obj: Any = json_loads(leaf, "leaf")
    if not isinstance(obj, dict) or not {"body", "integratedTime"} <= set(obj) <= {"body", "integratedTime", "links"}:
        raise FormatError("leaf must be an object with 'body', 'integratedTime' and optional 'links'")
    body, t, links = obj["body"], obj["integratedTime"], obj.get("links")
    if not isinstance(body, dict) or not isinstance(t, int) or isinstance(t, bool):
        raise FormatError("leaf body must be an object and integratedTime an integer")
    if links is not None and (
        not isinstance(links, dict)
        or not all(v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 0) for v in links.values())
    ):
        raise FormatError("leaf links must map digests to earlier log indices or null")
    entry = Entry(body, t, links)
    if entry.leaf() != leaf:
        raise FormatError("leaf is not in RFC 8785 canonical form")
    return entry
