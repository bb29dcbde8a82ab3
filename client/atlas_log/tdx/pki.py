"""The X.509 and ECDSA building blocks of DCAP verification, and the pin of Intel's root.

Intel signs collateral and certificates with P-256 ECDSA; quotes and signed JSON carry raw ``r ‖ s``
signatures, which :func:`der_signature` converts for ``cryptography``. Collateral times are ISO 8601 UTC.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import NameOID

from atlas_log._encoding import hexdecode
from atlas_log.certificates import load_pem_certificates
from atlas_log.errors import FormatError, QuoteError

__all__ = [
    "INTEL_ROOT_SPKI_SHA256",
    "collateral_hex",
    "collateral_time",
    "common_name",
    "crl_signed_by",
    "der_signature",
    "ecdsa_verifies",
    "issued_by",
    "load_chain",
    "spki_sha256",
    "timestamp",
]

# SHA-256 of the Intel SGX Root CA's SubjectPublicKeyInfo: the one trust anchor of production verification.
INTEL_ROOT_SPKI_SHA256 = "a0af031289f5d5d4132f9186068a7fc13628633ba235777472e29b6b6c67a49e"

_ECDSA = ec.ECDSA(hashes.SHA256())


def timestamp(dt: datetime) -> int:
    """Unix seconds of a datetime (naive ones are UTC)."""
    return int(dt.replace(tzinfo=UTC).timestamp() if dt.tzinfo is None else dt.timestamp())


def collateral_time(value: Any, what: str) -> int:
    """Unix seconds of a collateral ``YYYY-MM-DDTHH:MM:SSZ`` time; ``collateral-malformed`` otherwise."""
    if not isinstance(value, str) or not value.endswith("Z"):
        raise QuoteError("collateral-malformed", f"{what} is not an ISO 8601 UTC time")
    try:
        return timestamp(datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ"))
    except ValueError as exc:
        raise QuoteError("collateral-malformed", f"{what} is not an ISO 8601 UTC time: {value!r}") from exc


def collateral_hex(value: Any, size: int, what: str) -> bytes:
    """``size`` bytes from a collateral hex string (either case); ``collateral-malformed`` otherwise."""
    if not isinstance(value, str):
        raise QuoteError("collateral-malformed", f"{what} must be {size} bytes of hex")
    try:
        return hexdecode(value, what, size, any_case=True)
    except FormatError as exc:
        raise QuoteError("collateral-malformed", f"{what} must be {size} bytes of hex") from exc


def common_name(cert: x509.Certificate) -> str:
    attrs = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(attrs[0].value) if attrs else ""


def spki_sha256(cert: x509.Certificate) -> str:
    """The hex SHA-256 of a certificate's SubjectPublicKeyInfo: how roots are pinned."""
    der = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def der_signature(raw: bytes) -> bytes:
    """A raw 64-byte ``r ‖ s`` ECDSA signature as DER."""
    return encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))


def ecdsa_verifies(key: Any, sig: bytes, data: bytes) -> bool:
    """Whether ``key`` is a P-256 key whose ECDSA-SHA256 DER signature ``sig`` over ``data`` verifies."""
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        return False
    try:
        key.verify(sig, data, _ECDSA)
    except InvalidSignature:
        return False
    return True


def issued_by(child: x509.Certificate, parent: x509.Certificate) -> bool:
    try:
        child.verify_directly_issued_by(parent)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def crl_signed_by(crl: x509.CertificateRevocationList, issuer: x509.Certificate) -> bool:
    key = issuer.public_key()
    return isinstance(key, ec.EllipticCurvePublicKey) and crl.is_signature_valid(key)


def load_chain(pem: bytes, what: str) -> list[x509.Certificate]:
    """PEM certificates (trailing NULs of fixed-size buffers ignored); ``certificate-chain-invalid`` otherwise."""
    try:
        return load_pem_certificates(pem.rstrip(b"\0"))
    except ValueError as exc:
        raise QuoteError("certificate-chain-invalid", f"{what} is not a PEM certificate chain") from exc
