"""Sigstore bundles (v0.3, as the OpenSSF ``model-signing`` tool writes them) that wrap a DSSE envelope, and
X.509 signing certificates checked against configured roots.

Key-signed bundles carry only a key hint: the submitter supplies the public key. Certificate-signed bundles
carry the chain (``x509CertificateChain`` or a single ``certificate``); it is checked by a real RFC 5280 path
validator (``cryptography.x509.verification``), not pairwise signatures: every issuer a CA allowed to sign
certificates, path lengths and names respected, every certificate valid at the given time, and the leaf
allowed to sign (digitalSignature) for the configured extended key usage (code signing by default).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    Policy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from atlas_log._encoding import b64decode
from atlas_log.certificates import load_der_certificate
from atlas_log.dsse import Envelope, PublicKey, SpkiDer, parse_envelope
from atlas_log.errors import FormatError, SignatureError

__all__ = ["CODE_SIGNING", "Bundle", "chain_digest", "parse_bundle", "signing_certificate"]

MEDIA_TYPES = ("application/vnd.dev.sigstore.bundle.v0.3+json", "application/vnd.dev.sigstore.bundle+json;version=0.3")
MAX_CERTIFICATES = 10  # in a submitted chain, leaf first; real PKIs send two or three


@dataclass(frozen=True, slots=True)
class Bundle:
    envelope: Envelope
    chain: tuple[bytes, ...]  # DER certificates, leaf first; empty for a key-signed bundle
    key_hint: str | None


def parse_bundle(obj: Any) -> Bundle:
    """Parse a Sigstore bundle v0.3 carrying a DSSE envelope (message signatures are not accepted)."""
    if not isinstance(obj, dict):
        raise FormatError("sigstoreBundle must be a JSON object")
    if obj.get("mediaType") not in MEDIA_TYPES:
        raise FormatError(f"sigstoreBundle.mediaType must be one of {list(MEDIA_TYPES)}")
    if "dsseEnvelope" not in obj:
        raise FormatError("sigstoreBundle must carry a dsseEnvelope (message signatures are not accepted)")
    envelope = parse_envelope(obj["dsseEnvelope"])
    vm = obj.get("verificationMaterial")
    if not isinstance(vm, dict):
        raise FormatError("sigstoreBundle.verificationMaterial is required")
    chain: list[bytes] = []
    hint = None
    if isinstance(vm.get("x509CertificateChain"), dict):
        certs = vm["x509CertificateChain"].get("certificates")
        if not isinstance(certs, list) or not 1 <= len(certs) <= MAX_CERTIFICATES:
            raise FormatError(f"x509CertificateChain.certificates must list 1..{MAX_CERTIFICATES} certificates")
        chain = [b64decode(c.get("rawBytes", "") if isinstance(c, dict) else "", "certificate") for c in certs]
    elif isinstance(vm.get("certificate"), dict):
        chain = [b64decode(vm["certificate"].get("rawBytes", ""), "certificate")]
    elif isinstance(vm.get("publicKey"), dict):
        h = vm["publicKey"].get("hint")
        hint = h if isinstance(h, str) else None
    else:
        raise FormatError("verificationMaterial needs x509CertificateChain, certificate or publicKey")
    return Bundle(envelope, tuple(chain), hint)


CODE_SIGNING = ExtendedKeyUsageOID.CODE_SIGNING.dotted_string
"""The extended key usage a signing certificate must carry by default, as Sigstore/Fulcio issue them."""

MAX_CHAIN_DEPTH = 8  # intermediates between the leaf and a root; real PKIs use one or two


def _eku_check(required: x509.ObjectIdentifier, *, ca: bool) -> Callable[..., None]:
    def check(_policy: Policy, cert: x509.Certificate, eku: x509.ExtendedKeyUsage | None) -> None:
        # RFC 5280 §4.2.1.12: a CA's EKU constrains what it may issue (a Fulcio intermediate carries
        # code signing); absent on a CA, it constrains nothing. The leaf must name the usage itself.
        if eku is None and ca:
            return
        usages = list(eku) if eku is not None else []
        if required not in usages and not (ca and ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in usages):
            raise ValueError(f"extended key usage {required.dotted_string} is required")

    return check


def _leaf_may_sign(_policy: Policy, _cert: x509.Certificate, ku: x509.KeyUsage) -> None:
    if not ku.digital_signature:
        raise ValueError("the signing certificate's key usage lacks digitalSignature")


def _policies(eku: str) -> tuple[ExtensionPolicy, ExtensionPolicy]:
    """(CA, end-entity) extension policies: the Web PKI profile (basicConstraints cA and keyCertSign on every
    issuer, pathLenConstraint, name chaining and constraints, AKI) with the usage a signer needs instead of
    TLS's. Two relaxations for the leaf, which signs statements and names no host: it needs no
    subjectAltName, and it may assert cA (the model-signing tool's certificates do); it still can never
    issue, since only certificates meeting the CA policy act as issuers."""
    try:
        required = x509.ObjectIdentifier(eku)
    except ValueError as exc:
        raise SignatureError(f"extended key usage {eku!r} is not an OID") from exc
    ca = ExtensionPolicy.webpki_defaults_ca().may_be_present(
        x509.ExtendedKeyUsage, Criticality.AGNOSTIC, _eku_check(required, ca=True)
    )
    ee = (
        ExtensionPolicy.webpki_defaults_ee()
        .may_be_present(x509.BasicConstraints, Criticality.AGNOSTIC, None)
        .may_be_present(x509.SubjectAlternativeName, Criticality.AGNOSTIC, None)
        .require_present(x509.ExtendedKeyUsage, Criticality.AGNOSTIC, _eku_check(required, ca=False))
        .require_present(x509.KeyUsage, Criticality.AGNOSTIC, _leaf_may_sign)
    )
    return ca, ee


def chain_digest(chain: Sequence[bytes]) -> str:
    """SHA-256 (hex) of the certificate chain as submitted, DER certificates leaf first, concatenated (DER is
    self-delimiting). An entry records it, so evidence that its chain does not verify can be tied to the leaf."""
    return hashlib.sha256(b"".join(chain)).hexdigest()


def signing_certificate(
    chain: Sequence[bytes], roots: Sequence[x509.Certificate], now: int, eku: str = CODE_SIGNING
) -> PublicKey:
    """Validate ``chain`` (DER, leaf first, then intermediates in any order) as an RFC 5280 path to one of
    ``roots`` at ``now`` (Unix seconds), the leaf carrying extended key usage ``eku`` (dotted OID) and
    digitalSignature; return the leaf's key, carrying the certificate identity. Raises
    :class:`SignatureError` naming the failed check."""
    if not roots:
        raise SignatureError("no X.509 roots are configured, so certificate-signed entries cannot be checked")
    if not chain:
        raise SignatureError("the certificate chain is empty")
    ca_policy, ee_policy = _policies(eku)
    try:
        certs = [load_der_certificate(c) for c in chain]
        verifier = (
            PolicyBuilder()
            .store(Store(list(roots)))
            .time(datetime.fromtimestamp(now, UTC))
            .max_chain_depth(MAX_CHAIN_DEPTH)
            .extension_policies(ca_policy=ca_policy, ee_policy=ee_policy)
            .build_client_verifier()
        )
        leaf = verifier.verify(certs[0], certs[1:]).chain[0]
        spki = leaf.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    except (ValueError, TypeError, OverflowError, VerificationError) as exc:
        raise SignatureError(f"the certificate chain does not verify against the configured roots: {exc}") from exc
    try:
        key = PublicKey(SpkiDer(spki))
    except FormatError as exc:
        raise SignatureError(f"the signing certificate's key is not accepted: {exc}") from exc
    cn = leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    sans: list[str] = []
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        sans = [
            str(v)
            for v in san.get_values_for_type(x509.RFC822Name)
            + san.get_values_for_type(x509.DNSName)
            + san.get_values_for_type(x509.UniformResourceIdentifier)
        ]
    except x509.ExtensionNotFound:
        pass
    key.certificate = {
        "certSha256": hashlib.sha256(chain[0]).hexdigest(),
        "chainSha256": chain_digest(chain),
        "subject": str(cn[0].value) if cn else leaf.subject.rfc4514_string(),
        "issuer": leaf.issuer.rfc4514_string(),
        "san": sans,
    }
    return key
