"""The JSON body of ``POST /api/v1/entries``: building one (clients) and parsing one strictly (the log at
admission, monitors when they re-verify what the log admitted)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from atlas_log._encoding import b64decode, b64encode, hexdecode, json_loads
from atlas_log.bundle import CODE_SIGNING, MAX_CERTIFICATES, parse_bundle, signing_certificate
from atlas_log.disclosure import MAX_DISCLOSURES, Disclosure, Revealed, parse_disclosure, reveal
from atlas_log.dsse import (
    MAX_KEYID,
    Envelope,
    PublicKey,
    SpkiDer,
    parse_envelope,
    sign_envelope,
    verify_envelope,
)
from atlas_log.entry import API_VERSION
from atlas_log.errors import FormatError, GpuEvidenceError, SignatureError, SubmissionError, VerificationError
from atlas_log.gpu.evidence import GpuEvidence, collection_sha256, parse_evidence_items, serialize_evidence
from atlas_log.intoto import Extraction, extract, extract_statement
from atlas_log.tdx.binding import (
    GPU_TAG,
    KEY_TAG,
    PAYLOAD_TAG,
    ZERO_NONCE,
    composite_report_data,
    gpu_nonce,
    key_report_data,
    payload_report_data,
)

__all__ = [
    "INTOTO_PAYLOAD_TYPE",
    "MAX_GPUS",
    "MAX_INDEX",
    "MAX_KEYS",
    "TEE_MEMBERS",
    "TOP_LEVEL_MEMBERS",
    "GpuEvidenceProvider",
    "ParsedSubmission",
    "QuoteProvider",
    "TeeRequest",
    "build_submission",
    "certificate_chain",
    "expected_gpu_nonce",
    "expected_report_data",
    "intoto_statement",
    "parse_submission",
    "parse_tee",
    "public_keys",
    "signed_submission",
    "spki_der",
    "submitted_extraction",
    "tdx_tee",
]

INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"


def spki_der(key: Ed25519PrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    """The DER SubjectPublicKeyInfo of a private key's public half."""
    return key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def build_submission(envelope: Envelope, public_keys: Sequence[bytes], **extra: Any) -> dict[str, Any]:
    """The request body for an envelope and the DER SPKIs of its signers."""
    return {
        "apiVersion": API_VERSION,
        "dsseEnvelope": envelope.to_json(),
        "verificationMaterial": {"publicKeys": [{"spki": b64encode(k)} for k in public_keys]},
        **extra,
    }


def intoto_statement(subjects: Sequence[tuple[str, str]], predicate_type: str, predicate: dict[str, Any]) -> bytes:
    """An in-toto Statement v1 (JSON bytes); ``subjects`` are ``(name, sha256 hex)`` pairs."""
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": name, "digest": {"sha256": digest}} for name, digest in subjects],
        "predicateType": predicate_type,
        "predicate": predicate,
    }
    return json.dumps(statement, separators=(",", ":"), sort_keys=True).encode()


def tdx_tee(quote: bytes, *, binding: str = PAYLOAD_TAG, nonce: bytes = ZERO_NONCE) -> dict[str, Any]:
    """The ``tee`` block of a submission carrying a TDX quote."""
    return {"type": "intel-tdx", "quote": b64encode(quote), "binding": binding, "nonce": nonce.hex()}


class QuoteProvider(Protocol):
    """Anything that returns a TDX quote carrying the given 64-byte REPORTDATA."""

    def quote(self, report_data: bytes) -> bytes: ...


class GpuEvidenceProvider(Protocol):
    """Anything that returns the evidence of every GPU of the TD (each stating its architecture), its SPDM
    requests carrying the given 32-byte nonce."""

    def gpu_evidence(self, nonce: bytes) -> list[GpuEvidence]: ...


def signed_submission(
    key: Ed25519PrivateKey,
    payload: bytes,
    platform: QuoteProvider | None = None,
    nonce: bytes = ZERO_NONCE,
    payload_type: str = INTOTO_PAYLOAD_TYPE,
    disclosures: Sequence[Disclosure] = (),
    gpus: GpuEvidenceProvider | None = None,
) -> dict[str, Any]:
    """Sign ``payload`` into a submission; with a quote ``platform``, attach a quote bound to it, and with
    ``gpus`` the evidence of every GPU too (composite binding: the GPUs' reports are made for this entry and
    the quote commits to them). A confidential statement (:func:`~atlas_log.disclosure.redact`) travels with
    its ``disclosures`` beside it: the log keeps them encrypted, and the signature and quote cover the redacted
    statement only."""
    spki = spki_der(key)
    extra: dict[str, Any] = {"disclosures": [d.encoded for d in disclosures]} if disclosures else {}
    if platform is not None and gpus is not None:
        evidence = gpus.gpu_evidence(gpu_nonce(payload_type, payload, spki, nonce))
        rd = composite_report_data(payload_type, payload, spki, collection_sha256(evidence), nonce)
        tee = tdx_tee(platform.quote(rd), binding=GPU_TAG, nonce=nonce)
        extra["tee"] = {**tee, "gpus": serialize_evidence(evidence)}
    elif platform is not None:
        rd = payload_report_data(payload_type, payload, spki, nonce)
        extra["tee"] = tdx_tee(platform.quote(rd), nonce=nonce)
    elif gpus is not None:
        raise ValueError("GPU evidence is bound through a TDX quote: give the quote platform too")
    return build_submission(sign_envelope(payload_type, payload, key), [spki], **extra)


MAX_KEYS = 4  # as many as an envelope has signatures (dsse.MAX_SIGNATURES)
MAX_INDEX = (1 << 53) - 1
# The members the parser knows; atlas_log.schema states the same shape declaratively (a test holds them equal).
TOP_LEVEL_MEMBERS = frozenset(
    {"apiVersion", "dsseEnvelope", "sigstoreBundle", "verificationMaterial", "tee", "annotations", "disclosures"}
)
TEE_MEMBERS = frozenset(
    {"type", "quote", "binding", "nonce", "signatureIndex", "keyAttestationEntry", "eventLog", "gpus"}
)
MAX_GPUS = 8  # the GPUs one confidential VM can hold


@dataclass(frozen=True, slots=True)
class ParsedSubmission:
    """A submission whose signatures (and certificate chain, if any) verified, with its statement's extraction
    (its payload parsed once, here). ``signers[i]`` is the key that verified signature ``i``; ``tee`` is the raw
    ``tee`` member (or None: see :func:`parse_tee`); ``disclosures`` reveal values the signed statement hides
    (each proved committed there: :func:`~atlas_log.disclosure.reveal`), and ``revealed`` is the statement
    with them put back (None without disclosures)."""

    envelope: Envelope
    signers: tuple[PublicKey, ...]
    tee: Any
    extraction: Extraction
    disclosures: tuple[Disclosure, ...] = ()
    revealed: Revealed | None = None


def certificate_chain(material: Any) -> tuple[bytes, ...]:
    """``verificationMaterial.x509CertificateChain``: base64 DER certificates, leaf first (empty if absent)."""
    if not isinstance(material, dict) or "x509CertificateChain" not in material:
        return ()
    raw = material["x509CertificateChain"]
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_CERTIFICATES or not all(isinstance(c, str) for c in raw):
        raise SubmissionError(
            "invalid-submission",
            f"verificationMaterial.x509CertificateChain must list 1..{MAX_CERTIFICATES} base64 DERs",
        )
    try:
        return tuple(b64decode(c, "x509CertificateChain") for c in raw)
    except FormatError as exc:
        raise SubmissionError("invalid-submission", str(exc)) from exc


def public_keys(material: Any) -> list[PublicKey]:
    if not isinstance(material, dict) or set(material) - {"publicKeys", "x509CertificateChain"}:
        raise SubmissionError(
            "invalid-submission", "verificationMaterial must be an object with 'publicKeys' or 'x509CertificateChain'"
        )
    raw = material.get("publicKeys")
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_KEYS:
        raise SubmissionError("invalid-submission", f"verificationMaterial.publicKeys must list 1..{MAX_KEYS} keys")
    keys = []
    for i, k in enumerate(raw):
        where = f"verificationMaterial.publicKeys[{i}]"
        if not isinstance(k, dict) or set(k) - {"spki", "pem", "keyid"} or ("spki" in k) == ("pem" in k):
            raise SubmissionError(
                "invalid-submission", f"{where} must have exactly one of 'spki' (base64 DER) or 'pem'"
            )
        try:
            if "spki" in k:
                if not isinstance(k["spki"], str):
                    raise FormatError(f"{where}.spki must be a base64 string")
                key = PublicKey(SpkiDer(b64decode(k["spki"], f"{where}.spki")))
            else:
                if not isinstance(k["pem"], str):
                    raise FormatError(f"{where}.pem must be a PEM string")
                key = PublicKey.from_pem(k["pem"])
            keyid = k.get("keyid", "")
            if not isinstance(keyid, str) or len(keyid) > MAX_KEYID:
                raise FormatError(f"{where}.keyid must be a string of at most {MAX_KEYID} characters")
            key.keyid = keyid
            keys.append(key)
        except FormatError as exc:
            raise SubmissionError("invalid-public-key", f"{where}: {exc}") from exc
    return keys


def parse_submission(
    submission: bytes | dict[str, Any],
    now: int,
    x509_roots: Sequence[x509.Certificate] = (),
    x509_eku: str = CODE_SIGNING,
) -> ParsedSubmission:
    """Parse and check a submission (its JSON bytes, or the object a caller already decoded): its shape, its
    signatures over PAE (keys given, or an X.509 chain that is a valid path to ``x509_roots`` at ``now`` for the
    extended key usage ``x509_eku``) and its
    statement. Raises :class:`SubmissionError` whose ``code`` is the log's problem type: ``invalid-json``,
    ``invalid-submission``, ``unsupported-api-version``, ``invalid-envelope``, ``invalid-public-key``,
    ``certificate-untrusted``, ``signature-invalid`` or ``invalid-statement``. The ``tee`` member is returned
    as is (see :func:`parse_tee`)."""
    try:
        obj = json_loads(submission, "request body") if isinstance(submission, bytes) else submission
    except FormatError as exc:
        raise SubmissionError("invalid-json", str(exc)) from exc
    if not isinstance(obj, dict):
        raise SubmissionError("invalid-submission", "request body must be a JSON object")
    unknown = set(obj) - TOP_LEVEL_MEMBERS
    if unknown:
        raise SubmissionError(
            "invalid-submission", f"unknown members {sorted(unknown)}; allowed: {sorted(TOP_LEVEL_MEMBERS)}"
        )
    if obj.get("apiVersion", API_VERSION) != API_VERSION:
        raise SubmissionError("unsupported-api-version", f"apiVersion must be {API_VERSION!r}")
    if ("dsseEnvelope" in obj) == ("sigstoreBundle" in obj):
        raise SubmissionError("invalid-submission", "exactly one of dsseEnvelope or sigstoreBundle is required")
    chain: tuple[bytes, ...] = ()
    try:
        if "sigstoreBundle" in obj:
            bundle = parse_bundle(obj["sigstoreBundle"])
            envelope, chain = bundle.envelope, bundle.chain
        else:
            envelope = parse_envelope(obj["dsseEnvelope"])
    except FormatError as exc:
        raise SubmissionError("invalid-envelope", str(exc)) from exc
    try:
        chain = chain or certificate_chain(obj.get("verificationMaterial"))
        material = obj.get("verificationMaterial")
        keys = [signing_certificate(chain, x509_roots, now, x509_eku)] if chain else public_keys(material)
    except SignatureError as exc:
        raise SubmissionError("certificate-untrusted", str(exc)) from exc
    try:
        signers = verify_envelope(envelope, keys)
    except SignatureError as exc:
        raise SubmissionError("signature-invalid", str(exc)) from exc
    try:
        extraction, statement = extract_statement(envelope.payload_type, envelope.payload)
    except FormatError as exc:
        raise SubmissionError("invalid-statement", f"the payload's statement or predicate is invalid: {exc}") from exc
    disclosures, revealed = _disclosures(obj.get("disclosures"), statement)
    return ParsedSubmission(envelope, tuple(signers), obj.get("tee"), extraction, disclosures, revealed)


def _disclosures(raw: Any, statement: dict[str, Any] | None) -> tuple[tuple[Disclosure, ...], Revealed | None]:
    """The submission's disclosures, each proved to be a value the signed ``statement`` (None: the payload is
    not an in-toto statement) hides, and the statement they reveal."""
    if raw is None:
        return (), None
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_DISCLOSURES:
        raise SubmissionError("invalid-disclosure", f"disclosures must be a list of 1..{MAX_DISCLOSURES} strings")
    try:
        parsed = tuple(parse_disclosure(d) for d in raw)
        if statement is None:
            raise FormatError("only an in-toto statement can hide values")
        revealed = reveal(statement, parsed)
    except (FormatError, VerificationError) as exc:
        raise SubmissionError(
            "invalid-disclosure", f"a disclosure does not reveal a value the statement hides: {exc}"
        ) from exc
    return parsed, revealed


def submitted_extraction(submission: bytes | dict[str, Any]) -> Extraction:
    """What the statement of a submission the log admitted says (its facts), without re-verifying its
    signatures: for the log's and a reader's derived data, whose digests the entry's leaf pins
    (``factsSha256``). Raises :class:`FormatError` for anything that is not a submission's envelope."""
    obj = json_loads(submission, "submission") if isinstance(submission, bytes) else submission
    if not isinstance(obj, dict):
        raise FormatError("a submission is a JSON object")
    envelope = (
        parse_bundle(obj["sigstoreBundle"]).envelope
        if "sigstoreBundle" in obj
        else parse_envelope(obj.get("dsseEnvelope"))
    )
    return extract(envelope.payload_type, envelope.payload)


@dataclass(frozen=True, slots=True)
class TeeRequest:
    """A submission's ``tee`` block, checked for shape: which signature's key it binds, how, with which
    nonce, and either its quote or the earlier entry that attested the key."""

    binding: str
    signature_index: int
    nonce: bytes
    quote: bytes | None
    key_attestation_entry: int | None
    gpus: tuple[GpuEvidence, ...] = ()


def parse_tee(tee: Any, signers: int) -> TeeRequest:
    """Check a ``tee`` block (not its quote); raises :class:`SubmissionError` with code ``invalid-tee``."""

    def bad(message: str) -> SubmissionError:
        return SubmissionError("invalid-tee", message)

    if not isinstance(tee, dict) or set(tee) - TEE_MEMBERS:
        raise bad(f"'tee' must be an object with members from {sorted(TEE_MEMBERS)}")
    if tee.get("type") != "intel-tdx":
        raise bad("tee.type must be 'intel-tdx'")
    binding = tee.get("binding", PAYLOAD_TAG)
    if binding not in (PAYLOAD_TAG, KEY_TAG, GPU_TAG):
        raise bad(f"tee.binding must be {PAYLOAD_TAG!r}, {KEY_TAG!r} or {GPU_TAG!r}")
    index = tee.get("signatureIndex", 0)
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < signers:
        raise bad("tee.signatureIndex must index a signature of the envelope")
    try:
        nonce = hexdecode(tee.get("nonce", ZERO_NONCE.hex()), "tee.nonce", 32)
    except FormatError as exc:
        raise bad(str(exc)) from exc
    if "keyAttestationEntry" in tee:
        entry = tee["keyAttestationEntry"]
        if binding != KEY_TAG or "quote" in tee:
            raise bad("keyAttestationEntry goes with binding atlas-log/tdx-key/v1 and no quote")
        # A log index is at most 2^53 - 1: what an entry's canonical JSON (RFC 8785) and the database can hold.
        if not isinstance(entry, int) or isinstance(entry, bool) or not 0 <= entry <= MAX_INDEX:
            raise bad(f"tee.keyAttestationEntry must be a log index (0 to {MAX_INDEX})")
        return TeeRequest(binding, index, nonce, None, entry)
    if not isinstance(tee.get("quote"), str):
        raise bad("tee.quote (base64 DCAP quote) is required")
    try:
        quote = b64decode(tee["quote"], "tee.quote")
    except FormatError as exc:
        raise bad(str(exc)) from exc
    if (binding == GPU_TAG) != ("gpus" in tee):
        raise bad(f"tee.gpus (the GPUs' evidence) goes with binding {GPU_TAG!r}, and that binding needs it")
    gpus: tuple[GpuEvidence, ...] = ()
    if binding == GPU_TAG:
        if not isinstance(tee["gpus"], list) or not 0 < len(tee["gpus"]) <= MAX_GPUS:
            raise bad(f"tee.gpus must list the evidence of 1 to {MAX_GPUS} GPUs")
        try:
            gpus = tuple(parse_evidence_items(tee["gpus"], "tee.gpus"))
        except GpuEvidenceError as exc:
            raise bad(str(exc)) from exc
    return TeeRequest(binding, index, nonce, quote, None, gpus)


def expected_report_data(request: TeeRequest, envelope: Envelope, signer: PublicKey) -> bytes:
    """The REPORTDATA a quote must carry for this request: the payload binding (this exact statement, signer
    and nonce) or the key binding (this signer's key and nonce)."""
    if request.binding == PAYLOAD_TAG:
        return payload_report_data(envelope.payload_type, envelope.payload, signer.spki, request.nonce)
    if request.binding == GPU_TAG:
        digest = collection_sha256(request.gpus)
        return composite_report_data(envelope.payload_type, envelope.payload, signer.spki, digest, request.nonce)
    return key_report_data(signer.spki, request.nonce)


def expected_gpu_nonce(request: TeeRequest, envelope: Envelope, signer: PublicKey) -> bytes:
    """The nonce every GPU report of a composite request must carry (:func:`~atlas_log.tdx.binding.gpu_nonce`)."""
    return gpu_nonce(envelope.payload_type, envelope.payload, signer.spki, request.nonce)
