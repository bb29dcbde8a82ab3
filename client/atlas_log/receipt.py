"""Receipts: what the log returns for an admitted entry, verifiable offline.

JSON form (binary fields standard base64)::

    {"entryId": hex, "logIndex": int, "leafHash": b64, "leaf": b64,
     "inclusionProof": {"logIndex": int, "treeSize": int, "hashes": [b64, ...]},
     "checkpoint": "<signed note text>"}

:func:`verify_receipt` checks, with no I/O: the checkpoint's signature under the log's verifier key, that
the leaf hashes to ``leafHash``, and that the inclusion proof leads from that leaf to the checkpoint's root.
:func:`verify_receipt_for` checks that a receipt's leaf is the entry built from one's own submission
(:class:`SubmittedEntry`): a valid receipt for somebody else's entry proves nothing about what was sent.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import serialization

from atlas_log._encoding import b64decode, b64encode, hexdecode
from atlas_log.bundle import chain_digest, parse_bundle
from atlas_log.certificates import load_der_certificate
from atlas_log.checkpoint import Checkpoint, open_checkpoint
from atlas_log.cosignature import CosignatureVerifier, verify_cosignatures
from atlas_log.dsse import Envelope, PublicKey, SpkiDer, parse_envelope, verify_envelope
from atlas_log.entry import canonical_json, entry_id, index_summary, legacy_entry_id, parse_leaf
from atlas_log.errors import (
    FormatError,
    GpuEvidenceError,
    ProofError,
    QuoteError,
    ReceiptMismatchError,
    SubmissionError,
)
from atlas_log.gpu.evidence import collection_sha256, parse_evidence_items
from atlas_log.intoto import extract
from atlas_log.merkle import LeafHash, leaf_hash, verify_inclusion
from atlas_log.note import Verifier, parse_note
from atlas_log.submission import certificate_chain, parse_tee, public_keys
from atlas_log.tdx.quote import parse_quote

__all__ = ["Receipt", "SubmittedEntry", "split_submission", "verify_leaf_for", "verify_receipt", "verify_receipt_for"]


@dataclass(frozen=True, slots=True)
class Receipt:
    entry_id: bytes
    log_index: int
    leaf_hash: LeafHash
    leaf: bytes
    tree_size: int
    hashes: tuple[bytes, ...]
    checkpoint: bytes
    # Whether the log made the leaf for this submission (201) or already held it (200); None when not known
    # (a receipt read from a file). Not part of the receipt's JSON: it is how the log answered, not what it proved.
    created: bool | None = field(default=None, compare=False)

    @classmethod
    def from_json(cls, obj: Any) -> Receipt:
        """Parse a receipt strictly; raise :class:`FormatError` on any deviation."""
        if not isinstance(obj, dict):
            raise FormatError(f"a receipt is a JSON object (parsed, e.g. with json.loads), not {type(obj).__name__}")
        try:
            proof = obj["inclusionProof"]
            index, size, hashes = proof["logIndex"], proof["treeSize"], proof["hashes"]
            if not isinstance(index, int) or not isinstance(size, int) or not isinstance(hashes, list):
                raise TypeError("logIndex/treeSize must be integers and hashes a list")
            if obj["logIndex"] != index:
                raise FormatError("receipt logIndex differs from inclusionProof.logIndex")
            if not isinstance(obj["checkpoint"], str):
                raise TypeError("checkpoint must be the signed note text")
            return cls(
                entry_id=hexdecode(obj["entryId"], "entryId", 32),
                log_index=index,
                leaf_hash=LeafHash(b64decode(obj["leafHash"], "leafHash")),
                leaf=b64decode(obj["leaf"], "leaf"),
                tree_size=size,
                hashes=tuple(b64decode(h, "inclusionProof.hashes") for h in hashes),
                checkpoint=obj["checkpoint"].encode(),
            )
        except KeyError as exc:
            raise FormatError(
                f"not a receipt: it has no member {exc} (a receipt is what the log answers a submission with; "
                "submit --receipt FILE saves it)"
            ) from exc
        except TypeError as exc:
            raise FormatError(f"malformed receipt: {exc}") from exc

    def to_json(self) -> dict[str, Any]:
        return {
            "entryId": self.entry_id.hex(),
            "logIndex": self.log_index,
            "leafHash": b64encode(self.leaf_hash),
            "leaf": b64encode(self.leaf),
            "inclusionProof": {
                "logIndex": self.log_index,
                "treeSize": self.tree_size,
                "hashes": [b64encode(h) for h in self.hashes],
            },
            "checkpoint": self.checkpoint.decode(),
        }


def verify_receipt(
    receipt: Receipt | dict[str, Any],
    vkey: str | Verifier,
    *,
    witnesses: Sequence[CosignatureVerifier] = (),
    quorum: int | None = None,
    now: int | None = None,
) -> Checkpoint:
    """Verify a receipt offline against the log's verifier key; return the checkpoint it is proved against.

    With ``witnesses`` the checkpoint must also carry ``quorum`` (by default: all of them) valid cosignatures
    from them, none dated beyond the allowed clock skew ahead of ``now`` (POSIX seconds; default: this
    machine's clock).
    A receipt is kept for years, so old cosignatures are fine here.

    Raises :class:`~atlas_log.errors.FormatError` or :class:`~atlas_log.errors.VerificationError`.
    """
    r = receipt if isinstance(receipt, Receipt) else Receipt.from_json(receipt)
    verifier = vkey if isinstance(vkey, Verifier) else Verifier.from_vkey(vkey)
    cp = open_checkpoint(r.checkpoint, verifier)
    if quorum is None:
        quorum = len(witnesses)
    if quorum:
        clock = int(time.time()) if now is None else now
        verify_cosignatures(parse_note(r.checkpoint), witnesses, quorum, now=clock)
    if cp.size != r.tree_size:
        raise ProofError(f"inclusion proof is for size {r.tree_size}, checkpoint is for size {cp.size}")
    if leaf_hash(r.leaf) != r.leaf_hash:
        raise ProofError("leaf does not hash to leafHash")
    body = parse_leaf(r.leaf).body
    # Receipts issued before the v2 identity carry the v1 entryId; either is a function of the leaf's body.
    if r.entry_id not in (entry_id(body), legacy_entry_id(body)):
        raise ProofError("entryId is not the identity of the leaf's body")
    verify_inclusion(r.leaf_hash, r.log_index, r.tree_size, list(r.hashes), cp.root_hash)
    return cp


@dataclass(frozen=True, slots=True)
class SubmittedEntry:
    """What a submission signs and attests: the part of its entry that the log cannot choose.

    Deliberately not the envelope's hash nor the entry id: a resubmission may be answered with the entry
    already logged for the same statement and signers, whose envelope encodes its signatures differently.
    ``signers`` are the SPKI SHA-256 fingerprints of the keys whose signatures verify; ``tee_signer`` the one the
    ``tee`` block binds (None: not attested); ``quote_sha256`` and ``key_attestation_entry`` what attests it.
    """

    payload_type: str
    payload_sha256: str
    pae_sha256: str
    signers: frozenset[str]
    index: bytes  # canonical JSON of what the statement says (entry.index_summary): the leaf's ``index``
    tee_signer: str | None = None
    tee_binding: str | None = None
    tee_nonce: str | None = None
    quote_sha256: str | None = None
    key_attestation_entry: int | None = None

    @classmethod
    def from_submission(cls, submission: Mapping[str, Any]) -> SubmittedEntry:
        """Recompute, from one's own submission (``POST /api/v1/entries`` body), what its entry must say.

        The signatures are checked over PAE with the submitted keys (an X.509 chain's leaf key, unvalidated: the
        submitter trusts its own certificate). Raises :class:`SubmissionError` for a submission the log would
        refuse anyway, before anything is sent.
        """
        try:
            if "sigstoreBundle" in submission:
                bundle = parse_bundle(submission["sigstoreBundle"])
                envelope, chain = bundle.envelope, bundle.chain
            else:
                envelope, chain = parse_envelope(submission.get("dsseEnvelope")), ()
            chain = chain or certificate_chain(submission.get("verificationMaterial"))
            if chain:
                cert = load_der_certificate(chain[0])
                spki = cert.public_key().public_bytes(
                    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
                )
                keys = [PublicKey(SpkiDer(spki))]
            else:
                keys = public_keys(submission.get("verificationMaterial"))
            signers = verify_envelope(envelope, keys)
        except SubmissionError:
            raise
        except (FormatError, ValueError) as exc:  # SignatureError is a VerificationError: it passes through
            raise SubmissionError("invalid-submission", f"the submission cannot be checked: {exc}") from exc
        try:
            index = canonical_json(index_summary(extract(envelope.payload_type, envelope.payload)).to_json())
        except FormatError as exc:
            raise SubmissionError("invalid-statement", f"the payload's statement is invalid: {exc}") from exc
        fields: dict[str, Any] = {}
        if submission.get("tee") is not None:
            request = parse_tee(submission["tee"], len(signers))
            fields = {
                "tee_signer": signers[request.signature_index].fingerprint,
                "tee_binding": request.binding,
                "tee_nonce": request.nonce.hex(),
                "quote_sha256": _quote_identity(request.quote) if request.quote is not None else None,
                "key_attestation_entry": request.key_attestation_entry,
            }
        return cls(
            payload_type=envelope.payload_type,
            payload_sha256=hashlib.sha256(envelope.payload).hexdigest(),
            pae_sha256=hashlib.sha256(envelope.pae()).hexdigest(),
            signers=frozenset(k.fingerprint for k in signers),
            index=index,
            **fields,
        )


def _quote_identity(quote: bytes) -> str:
    """What an entry's ``quoteSha256`` records of this quote: the hash of its bytes up to the end of its
    signature data (trailing zero padding is not part of a quote's identity)."""
    try:
        return hashlib.sha256(parse_quote(quote).raw).hexdigest()
    except QuoteError:  # the log refuses such a quote; a leaf it created can never match this hash
        return hashlib.sha256(quote).hexdigest()


def quote_identities(quote: bytes) -> tuple[str, ...]:
    """The hashes an entry may record of its quote (``quoteSha256``): of the quote without trailing zero padding,
    or (entries logged before padding was cut off) of every byte."""
    full = hashlib.sha256(quote).hexdigest()
    try:
        return (hashlib.sha256(parse_quote(quote).raw).hexdigest(), full)
    except QuoteError:
        return (full,)


def _digest(value: Any) -> Any:
    return value.get("sha256") if isinstance(value, dict) else None


# The members of a submission's ``tee`` request an attested entry's ``tee`` records as they were submitted.
_TEE_RECORDED = ("type", "binding", "signatureIndex", "nonce", "keyAttestationEntry")
_ENVELOPE_MEMBERS = ("dsseEnvelope", "sigstoreBundle", "verificationMaterial", "tee")


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b  # True == 1 in Python; not in JSON


def _envelope_hash(envelope: Envelope) -> dict[str, str]:
    return {"sha256": hashlib.sha256(canonical_json(envelope.to_json())).hexdigest()}


def _recorded_spki(member: Any, recorded: set[str]) -> str | None:
    """A ``publicKeys`` member's key as base64 DER SPKI if the entry records it as a signer, else None."""
    try:
        if isinstance(member, dict) and isinstance(member.get("spki"), str):
            key = PublicKey(SpkiDer(b64decode(member["spki"], "spki")))
        elif isinstance(member, dict) and isinstance(member.get("pem"), str):
            key = PublicKey.from_pem(member["pem"])
        else:
            return None
    except FormatError:
        return None
    return b64encode(key.spki) if key.fingerprint in recorded else None


def _split_material(material: Any, recorded: set[str], chains: set[str]) -> tuple[dict[str, Any], Any]:
    """``verificationMaterial`` split into the signer keys and certificate chain the entry records, and the rest."""
    if not isinstance(material, dict):
        return {}, material
    committed: dict[str, Any] = {}
    rest: dict[str, Any] = {}
    for name, value in material.items():
        if name == "publicKeys" and isinstance(value, list):
            keys: list[dict[str, str]] = []
            others = []
            for member in value:
                spki = _recorded_spki(member, recorded)
                if spki is not None and {"spki": spki} not in keys:
                    keys.append({"spki": spki})
                if spki is None or member != {"spki": spki}:  # a key id, a PEM text, an unrecorded key
                    others.append(member)
            if keys:
                committed[name] = keys
            if others:
                rest[name] = others
        elif name == "x509CertificateChain" and isinstance(value, list):
            try:
                chain = [b64decode(c, "x509CertificateChain") for c in value if isinstance(c, str)]
            except FormatError:
                chain = []
            if len(chain) == len(value) and chain and chain_digest(chain) in chains:
                committed[name] = value
            else:
                rest[name] = value
        else:
            rest[name] = value
    return committed, rest


def _split_tee(tee: Any, recorded: Any) -> tuple[dict[str, Any], Any]:
    """A ``tee`` request split into the members the entry's ``tee`` records with the same value (the quote:
    when its hash is ``quoteSha256``) and the rest (an event log, anything that differs)."""
    if not isinstance(tee, dict) or not isinstance(recorded, dict):
        return {}, tee
    committed: dict[str, Any] = {}
    rest: dict[str, Any] = {}
    for name, value in tee.items():
        if name == "quote":
            same = _quote_matches(value, recorded.get("quoteSha256"))
        elif name == "gpus":
            same = _gpus_match(value, recorded.get("gpuEvidenceSha256"))
        else:
            same = name in _TEE_RECORDED and name in recorded and _same(value, recorded[name])
        (committed if same else rest)[name] = value
    return committed, rest


def _gpus_match(gpus: Any, recorded: Any) -> bool:
    """Whether the GPU evidence collection served hashes to the ``gpuEvidenceSha256`` the leaf records (its
    canonical form: the JSON's spelling does not matter)."""
    if not isinstance(recorded, str):
        return False
    try:
        return collection_sha256(parse_evidence_items(gpus, "tee.gpus")).hex() == recorded
    except (GpuEvidenceError, ValueError):
        return False


def _quote_matches(quote: Any, recorded: Any) -> bool:
    if not isinstance(quote, str) or not isinstance(recorded, str):
        return False
    try:
        return recorded in quote_identities(b64decode(quote, "tee.quote"))
    except FormatError:
        return False


def split_submission(leaf: bytes, submission: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split a submission served beside the entry in ``leaf`` into what the leaf commits to and the rest (no I/O).

    The leaf commits to: the DSSE envelope (a Sigstore bundle's too) whose RFC 8785 hash is its ``envelopeHash``;
    of the verification material, the signer keys whose SPKI SHA-256 it records (given as ``spki``) and a
    certificate chain whose digest a signer's ``chainSha256`` records; of the ``tee`` request, the members its
    ``tee`` records with the same value, the quote whose hash is its ``quoteSha256`` and the GPU evidence whose
    collection hash is its ``gpuEvidenceSha256``; an ``apiVersion``
    equal to its own. Everything else is returned as served in the second dict: key ids and names, PEM texts,
    an event log, annotations, a bundle's other parts, and any member that differs (an envelope that differs
    comes with ``envelopeMismatch``). First check that this is the entry's submission at all
    (:func:`verify_leaf_for`). Raises :class:`FormatError` if ``leaf`` is not an entry.
    """
    body = parse_leaf(leaf).body
    sigs: list[Any] = body["signatures"] if isinstance(body.get("signatures"), list) else []
    verifiers = [s["verifier"] for s in sigs if isinstance(s, dict) and isinstance(s.get("verifier"), dict)]
    recorded = {v["spkiSha256"] for v in verifiers if isinstance(v.get("spkiSha256"), str)}
    certificates = [v["certificate"] for v in verifiers if isinstance(v.get("certificate"), dict)]
    chains = {c["chainSha256"] for c in certificates if isinstance(c.get("chainSha256"), str)}
    committed: dict[str, Any] = {}
    rest: dict[str, Any] = {}
    for name, value in submission.items():
        if name == "apiVersion" and _same(value, body.get("apiVersion")):
            committed[name] = value
        elif name not in _ENVELOPE_MEMBERS:
            rest[name] = value
    envelope_member = "sigstoreBundle" if "sigstoreBundle" in submission else "dsseEnvelope"
    if envelope_member == "sigstoreBundle" and "dsseEnvelope" in submission:  # a submission has one or the other
        rest["dsseEnvelope"] = submission["dsseEnvelope"]
    if envelope_member in submission:
        served = submission[envelope_member]
        bundle_chain: tuple[bytes, ...] = ()
        try:
            if envelope_member == "sigstoreBundle":
                bundle = parse_bundle(served)
                envelope, bundle_chain = bundle.envelope, bundle.chain
            else:
                envelope = parse_envelope(served)
            if _envelope_hash(envelope) != body.get("envelopeHash"):
                raise FormatError("its RFC 8785 hash is not the leaf's envelopeHash")
        except FormatError as exc:
            rest[envelope_member] = served
            rest["envelopeMismatch"] = f"the {envelope_member} is not the envelope the leaf commits to: {exc}"
        else:
            committed["dsseEnvelope"] = envelope.to_json()
            if envelope_member == "sigstoreBundle":
                others = {k: v for k, v in served.items() if k != "dsseEnvelope"}
                if bundle_chain and chain_digest(bundle_chain) in chains:
                    committed["verificationMaterial"] = {"x509CertificateChain": [b64encode(c) for c in bundle_chain]}
                    material: dict[str, Any] = others["verificationMaterial"]  # parse_bundle: an object
                    others["verificationMaterial"] = {
                        k: v for k, v in material.items() if k not in ("x509CertificateChain", "certificate")
                    }
                rest[envelope_member] = others
    if "verificationMaterial" in submission:
        material_committed, material_rest = _split_material(submission["verificationMaterial"], recorded, chains)
        if material_committed:
            committed["verificationMaterial"] = {**committed.get("verificationMaterial", {}), **material_committed}
        if material_rest != {}:
            rest["verificationMaterial"] = material_rest
    if "tee" in submission:
        tee_committed, tee_rest = _split_tee(submission["tee"], body.get("tee"))
        if tee_committed:
            committed["tee"] = tee_committed
        if tee_rest != {}:
            rest["tee"] = tee_rest
    return committed, rest


def verify_receipt_for(receipt: Receipt, sent: SubmittedEntry, *, new_leaf: bool) -> None:
    """Check that ``receipt``'s leaf is the entry of the submission ``sent`` (no I/O; verify the receipt itself
    with :func:`verify_receipt`). See :func:`verify_leaf_for`; the error carries the receipt as evidence."""
    verify_leaf_for(receipt.leaf, sent, new_leaf=new_leaf, evidence=json.dumps(receipt.to_json()).encode())


def verify_leaf_for(leaf: bytes, sent: SubmittedEntry, *, new_leaf: bool, evidence: bytes | None = None) -> None:
    """Check that the entry in ``leaf`` is the one built from the submission ``sent`` (no I/O).

    Compared: payload type, payload and PAE hashes, the set of signer SPKI fingerprints, the index summary of
    what the statement says, and for an attested submission that the leaf's ``tee`` binds this signer; when the
    log says it created the leaf (``new_leaf``, HTTP 201) also the binding, nonce and this quote's hash (or
    key-attestation entry). An existing leaf may have been attested by another quote of the same statement
    (ml-provenance.md §4: one attestation, one entry). Not compared: the envelope hash, signature encodings and
    key ids, the entry id (deduplication may answer with an equal entry encoded differently). Raises
    :class:`ReceiptMismatchError` naming the first field that differs, with ``evidence`` (default: the leaf).
    """

    def mismatch(field: str, message: str) -> ReceiptMismatchError:
        return ReceiptMismatchError(field, message, leaf if evidence is None else evidence)

    body = parse_leaf(leaf).body
    if body.get("payloadType") != sent.payload_type:
        raise mismatch("payloadType", f"it logs payload type {body.get('payloadType')!r}, not {sent.payload_type!r}")
    if _digest(body.get("payloadHash")) != sent.payload_sha256 or _digest(body.get("paeHash")) != sent.pae_sha256:
        raise mismatch("paeHash", "it logs another payload (its PAE digest differs from the one signed)")
    sigs = body.get("signatures")
    try:
        logged = frozenset(s["verifier"]["spkiSha256"] for s in sigs) if isinstance(sigs, list) else None
    except (KeyError, TypeError):
        logged = None
    if logged != sent.signers:
        raise mismatch("signatures", f"it logs signer keys {sorted(logged or ())}, not {sorted(sent.signers)}")
    try:
        said = canonical_json(body.get("index"))
    except FormatError:
        said = b""
    if said != sent.index:
        raise mismatch("index", "its index (predicate type, subjects, materials, facts) is not what the statement says")
    if sent.tee_signer is None:
        return
    tee = body.get("tee")
    if not isinstance(tee, dict):
        raise mismatch("tee", "the submission was attested by a TDX quote, but the logged entry is not attested")
    if tee.get("spkiSha256") != sent.tee_signer:
        raise mismatch("tee", f"its attestation binds key {tee.get('spkiSha256')}, not the signer {sent.tee_signer}")
    if not new_leaf:
        return
    if tee.get("binding") != sent.tee_binding or tee.get("nonce") != sent.tee_nonce:
        raise mismatch("tee", "the new entry's attestation has another binding or nonce than the submission's")
    if sent.quote_sha256 is not None and tee.get("quoteSha256") != sent.quote_sha256:
        raise mismatch("tee", "the new entry was attested by another quote than the one submitted")
    if sent.key_attestation_entry is not None and tee.get("keyAttestationEntry") != sent.key_attestation_entry:
        raise mismatch("tee", "the new entry names another key-attestation entry than the submission")
