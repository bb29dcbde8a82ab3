"""Sigstore bundles (v0.3, as the OpenSSF ``model-signing`` tool writes them) that wrap a DSSE envelope, and
X.509 signing certificates checked against configured roots.

Key-signed bundles carry only a key hint: the submitter supplies the public key. Certificate-signed bundles
carry the chain (``x509CertificateChain`` or a single ``certificate``); the chain must lead to a configured
root, every certificate valid at the given time, the leaf allowed to sign (digitalSignature).
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from atlas_log._encoding import b64decode
from atlas_log.dsse import Envelope, PublicKey, SpkiDer, parse_envelope
from atlas_log.errors import FormatError, SignatureError

__all__ = ["Bundle", "parse_bundle", "signing_certificate"]

MEDIA_TYPES = ("application/vnd.dev.sigstore.bundle.v0.3+json", "application/vnd.dev.sigstore.bundle+json;version=0.3")


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
        if not isinstance(certs, list) or not 1 <= len(certs) <= 10:
            raise FormatError("x509CertificateChain.certificates must list 1..10 certificates")
        chain = [b64decode(c.get("rawBytes", "") if isinstance(c, dict) else "", "certificate") for c in certs]
    elif isinstance(vm.get("certificate"), dict):
        chain = [b64decode(vm["certificate"].get("rawBytes", ""), "certificate")]
    elif isinstance(vm.get("publicKey"), dict):
        h = vm["publicKey"].get("hint")
        hint = h if isinstance(h, str) else None
    else:
        raise FormatError("verificationMaterial needs x509CertificateChain, certificate or publicKey")
    return Bundle(envelope, tuple(chain), hint)


def _ts(dt: datetime) -> int:
    return int(dt.timestamp() if dt.tzinfo else dt.replace(tzinfo=UTC).timestamp())


def signing_certificate(chain: Sequence[bytes], roots: Sequence[x509.Certificate], now: int) -> PublicKey:
    """Check the chain against ``roots`` at ``now``; return the leaf's key, carrying the certificate identity."""
    if not roots:
        raise SignatureError("no X.509 roots are configured, so certificate-signed entries cannot be checked")
    try:
        certs = [x509.load_der_x509_certificate(c) for c in chain]
        for cert in certs:
            if not _ts(cert.not_valid_before_utc) <= now < _ts(cert.not_valid_after_utc):
                raise SignatureError(f"certificate {cert.subject.rfc4514_string()} is not valid at {now}")
        for child, parent in itertools.pairwise(certs):
            child.verify_directly_issued_by(parent)
        top = certs[-1]
        if not any(_issued(top, r) for r in roots):
            raise SignatureError("the certificate chain does not lead to a configured root")
        leaf = certs[0]
        try:
            ku = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
            if not ku.digital_signature:
                raise SignatureError("the signing certificate may not sign (no digitalSignature key usage)")
        except x509.ExtensionNotFound:
            pass
        spki = leaf.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        key = PublicKey(SpkiDer(spki))
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise SignatureError(f"the certificate chain does not verify: {exc}") from exc
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
        "subject": str(cn[0].value) if cn else leaf.subject.rfc4514_string(),
        "issuer": leaf.issuer.rfc4514_string(),
        "san": sans,
    }
    return key


def _issued(cert: x509.Certificate, root: x509.Certificate) -> bool:
    if cert.public_bytes(serialization.Encoding.DER) == root.public_bytes(serialization.Encoding.DER):
        return True
    try:
        cert.verify_directly_issued_by(root)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True
