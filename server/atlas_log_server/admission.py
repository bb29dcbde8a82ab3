"""Admission: turn a submitted JSON body into a verified entry, or a problem naming what to fix.

The pipeline runs in order: schema and size, DSSE signatures over PAE, then each configured gate (the
TEE quote check slots in here), then the canonical leaf. Nothing is written before every step passed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from cryptography import x509

from atlas_log._encoding import b64decode
from atlas_log.bundle import parse_bundle, signing_certificate
from atlas_log.dsse import Envelope, PublicKey, SpkiDer, parse_envelope, verify_envelope
from atlas_log.entry import (
    API_VERSION,
    LINKED_ROLES,
    MAX_LEAF_SIZE,
    build_body,
    encode_body,
    index_summary,
)
from atlas_log.errors import FormatError, SignatureError
from atlas_log.intoto import Extraction, extract
from atlas_log_server.errors import Problem
from atlas_log_server.log.sequencer import PendingEntry

MAX_KEYS = 16
_TOP_LEVEL = {"apiVersion", "dsseEnvelope", "sigstoreBundle", "verificationMaterial", "tee", "annotations"}


@dataclass(frozen=True, slots=True)
class Submission:
    """A parsed submission whose signatures have verified."""

    raw: bytes
    envelope: Envelope
    signers: tuple[PublicKey, ...]
    tee: Any
    extraction: Extraction


Gate = Callable[[Submission, int], Awaitable[dict[str, Any] | None]]
"""An admission step after the signature check, given the admission time; returns what the leaf records
under ``tee`` (or None), or raises :class:`Problem`."""


def _reject(slug: str, detail: str, status: int = 400) -> Problem:
    return Problem(status, slug, detail)


def _chain(material: Any) -> tuple[bytes, ...]:
    """``verificationMaterial.x509CertificateChain``: base64 DER certificates, leaf first (empty if absent)."""
    if not isinstance(material, dict) or "x509CertificateChain" not in material:
        return ()
    raw = material["x509CertificateChain"]
    if not isinstance(raw, list) or not 1 <= len(raw) <= 10 or not all(isinstance(c, str) for c in raw):
        raise _reject("invalid-submission", "verificationMaterial.x509CertificateChain must list 1..10 base64 DERs")
    try:
        return tuple(b64decode(c, "x509CertificateChain") for c in raw)
    except FormatError as exc:
        raise _reject("invalid-submission", str(exc)) from exc


def _keys(material: Any) -> list[PublicKey]:
    if not isinstance(material, dict) or set(material) - {"publicKeys", "x509CertificateChain"}:
        raise _reject(
            "invalid-submission", "verificationMaterial must be an object with 'publicKeys' or 'x509CertificateChain'"
        )
    raw = material.get("publicKeys")
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_KEYS:
        raise _reject("invalid-submission", f"verificationMaterial.publicKeys must list 1..{MAX_KEYS} keys")
    keys = []
    for i, k in enumerate(raw):
        where = f"verificationMaterial.publicKeys[{i}]"
        if not isinstance(k, dict) or set(k) - {"spki", "pem", "keyid"} or ("spki" in k) == ("pem" in k):
            raise _reject("invalid-submission", f"{where} must have exactly one of 'spki' (base64 DER) or 'pem'")
        try:
            if "spki" in k:
                if not isinstance(k["spki"], str):
                    raise FormatError(f"{where}.spki must be a base64 string")
                keys.append(PublicKey(SpkiDer(b64decode(k["spki"], f"{where}.spki"))))
            else:
                if not isinstance(k["pem"], str):
                    raise FormatError(f"{where}.pem must be a PEM string")
                keys.append(PublicKey.from_pem(k["pem"]))
        except FormatError as exc:
            raise _reject("invalid-public-key", f"{where}: {exc}") from exc
    return keys


class Admission:
    """The ordered admission pipeline."""

    def __init__(self, gates: Sequence[Gate], x509_roots: Sequence[x509.Certificate] = ()) -> None:
        self.gates = tuple(gates)
        self.x509_roots = tuple(x509_roots)

    def parse(self, raw: bytes, now: int) -> Submission:
        """Schema, signature (and certificate chain) and statement checks."""
        try:
            obj = orjson.loads(raw)  # strict: rejects lone surrogates, NaN and integers beyond 64 bits
        except (ValueError, RecursionError) as exc:
            raise _reject("invalid-json", f"request body is not valid JSON: {exc}") from exc
        if not isinstance(obj, dict):
            raise _reject("invalid-submission", "request body must be a JSON object")
        unknown = set(obj) - _TOP_LEVEL
        if unknown:
            raise _reject("invalid-submission", f"unknown members {sorted(unknown)}; allowed: {sorted(_TOP_LEVEL)}")
        if obj.get("apiVersion", API_VERSION) != API_VERSION:
            raise _reject("unsupported-api-version", f"apiVersion must be {API_VERSION!r}")
        if ("dsseEnvelope" in obj) == ("sigstoreBundle" in obj):
            raise _reject("invalid-submission", "exactly one of dsseEnvelope or sigstoreBundle is required")
        chain: tuple[bytes, ...] = ()
        try:
            if "sigstoreBundle" in obj:
                bundle = parse_bundle(obj["sigstoreBundle"])
                envelope, chain = bundle.envelope, bundle.chain
            else:
                envelope = parse_envelope(obj["dsseEnvelope"])
        except FormatError as exc:
            raise _reject("invalid-envelope", str(exc)) from exc
        try:
            chain = chain or _chain(obj.get("verificationMaterial"))
            if chain:
                keys = [signing_certificate(chain, self.x509_roots, now)]
            else:
                keys = _keys(obj.get("verificationMaterial"))
        except SignatureError as exc:
            raise _reject("certificate-untrusted", str(exc), 422) from exc
        try:
            signers = verify_envelope(envelope, keys)
        except SignatureError as exc:
            raise _reject("signature-invalid", str(exc)) from exc
        try:
            extraction = extract(envelope.payload_type, envelope.payload)
        except FormatError as exc:
            raise _reject("invalid-statement", f"the payload's statement or predicate is invalid: {exc}") from exc
        return Submission(raw, envelope, tuple(signers), obj.get("tee"), extraction)

    async def admit(self, raw: bytes, now: int) -> PendingEntry:
        """Run the whole pipeline; the result is ready for the sequencer."""
        sub = self.parse(raw, now)
        tee: dict[str, Any] | None = None
        for gate in self.gates:
            verdict = await gate(sub, now)
            if verdict is not None:
                tee = verdict
        ex = sub.extraction
        body, eid = encode_body(build_body(sub.envelope, sub.signers, tee, index_summary(ex)))
        linked = tuple(ex.digests(*LINKED_ROLES))
        # The leaf adds the integration time and one back-link per linked digest: bound its size now, so a
        # batch never meets an entry it cannot encode.
        bound = len(body) + sum(len(d) + 24 for d in linked) + 64
        if bound > MAX_LEAF_SIZE:
            raise _reject(
                "entry-too-large",
                f"the entry's leaf would be about {bound} bytes; the limit is "
                f"{MAX_LEAF_SIZE} (fewer signatures, subjects or materials per entry)",
                413,
            )
        facts = tuple((f"{a}:{h}", f.role, f.name, f.path, f.version) for f in ex.facts for a, h in f.digests)
        # Signer keys are indexed like artifacts, so "everything this key signed" is one lookup.
        facts += tuple(
            (f"sha256:{k.fingerprint}", "signer", None, f"$.signatures[{i}]", None) for i, k in enumerate(sub.signers)
        )
        return PendingEntry(eid, body, raw, now, linked, facts, ex.predicate_type)
