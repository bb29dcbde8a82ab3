"""DSSE envelopes (secure-systems-lab/dsse envelope.md v1.0.2): parsing, PAE, signing and verification.

Signatures are over ``PAE(payloadType, payload)``, never over the raw payload. Accepted keys: Ed25519,
ECDSA P-256 (SHA-256) and P-384 (SHA-384), RSA of 2048..4096 bits with exponent 65537, PKCS#1 v1.5 or PSS
over SHA-256.

The work a submission can cause is bounded before any is done: at most :data:`MAX_SIGNATURES` signatures,
each checked with the one key its ``keyid`` or position names (never every key), and RSA keys whose cost
per check is small (a long exponent or modulus would make one check cost a private-key operation).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NewType

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from atlas_log._encoding import b64decode, b64encode
from atlas_log.errors import FormatError, SignatureError

__all__ = [
    "MAX_SIGNATURES",
    "Envelope",
    "EnvelopeSignature",
    "PublicKey",
    "SpkiDer",
    "pae",
    "parse_envelope",
    "sign_envelope",
    "verify_envelope",
]

SpkiDer = NewType("SpkiDer", bytes)
"""A DER SubjectPublicKeyInfo."""

MAX_SIGNATURES = 4  # multi-party DSSE envelopes carry two or three; each costs one check
MAX_KEYID = 256
MIN_RSA_BITS = 2048
MAX_RSA_BITS = 4096
# FIPS 186-5 §5.4 allows any odd 2^16 < e < 2^256; 65537, what every toolchain emits, keeps a check cheap.
RSA_EXPONENT = 65537


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE pre-authentication encoding: ``"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body``."""
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


@dataclass(frozen=True, slots=True)
class EnvelopeSignature:
    sig: bytes
    keyid: str = ""


@dataclass(frozen=True, slots=True)
class Envelope:
    """A parsed DSSE envelope; ``payload`` is the decoded body."""

    payload_type: str
    payload: bytes
    signatures: tuple[EnvelopeSignature, ...]

    def pae(self) -> bytes:
        return pae(self.payload_type, self.payload)

    def to_json(self) -> dict[str, Any]:
        sigs: list[dict[str, str]] = []
        for s in self.signatures:
            sigs.append({"keyid": s.keyid, "sig": b64encode(s.sig)} if s.keyid else {"sig": b64encode(s.sig)})
        return {"payloadType": self.payload_type, "payload": b64encode(self.payload), "signatures": sigs}


def _str(obj: Mapping[str, Any], key: str, what: str, *, required: bool = True) -> str:
    v = obj.get(key)
    if v is None and not required:
        return ""
    if not isinstance(v, str):
        raise FormatError(f"{what}.{key} must be a string")
    try:
        v.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate from a \ud800 escape
        raise FormatError(f"{what}.{key} is not valid Unicode") from exc
    return v


def parse_envelope(obj: Any) -> Envelope:
    """Parse a DSSE envelope from decoded JSON; strict base64, 1..16 signatures, no unknown members."""
    if not isinstance(obj, dict):
        raise FormatError("dsseEnvelope must be a JSON object")
    unknown = set(obj) - {"payloadType", "payload", "signatures"}
    if unknown:
        raise FormatError(f"dsseEnvelope has unknown members: {sorted(unknown)}")
    payload_type = _str(obj, "payloadType", "dsseEnvelope")
    if not payload_type:
        raise FormatError("dsseEnvelope.payloadType must not be empty")
    payload = b64decode(_str(obj, "payload", "dsseEnvelope"), "dsseEnvelope.payload")
    raw_sigs = obj.get("signatures")
    if not isinstance(raw_sigs, list) or not 1 <= len(raw_sigs) <= MAX_SIGNATURES:
        raise FormatError(f"dsseEnvelope.signatures must be a list of 1..{MAX_SIGNATURES} signatures")
    sigs = []
    for i, s in enumerate(raw_sigs):
        if not isinstance(s, dict) or set(s) - {"sig", "keyid"}:
            raise FormatError(f"dsseEnvelope.signatures[{i}] must be an object with 'sig' and optional 'keyid'")
        keyid = _str(s, "keyid", f"dsseEnvelope.signatures[{i}]", required=False)
        if len(keyid) > MAX_KEYID:
            raise FormatError(f"dsseEnvelope.signatures[{i}].keyid is longer than {MAX_KEYID} characters")
        sig = b64decode(_str(s, "sig", f"dsseEnvelope.signatures[{i}]"), f"dsseEnvelope.signatures[{i}].sig")
        if not sig:
            raise FormatError(f"dsseEnvelope.signatures[{i}].sig is empty")
        sigs.append(EnvelopeSignature(sig, keyid))
    return Envelope(payload_type, payload, tuple(sigs))


class PublicKey:
    """A signer's public key, loaded from DER SPKI or PEM, restricted to the accepted algorithms."""

    __slots__ = ("_key", "certificate", "keyid", "spki")

    def __init__(self, spki: SpkiDer) -> None:
        try:
            key = serialization.load_der_public_key(spki)
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise FormatError(f"public key is not a DER SubjectPublicKeyInfo: {exc}") from exc
        if isinstance(key, ec.EllipticCurvePublicKey):
            if not isinstance(key.curve, ec.SECP256R1 | ec.SECP384R1):
                raise FormatError(f"ECDSA curve {key.curve.name} is not accepted (P-256 or P-384)")
        elif isinstance(key, rsa.RSAPublicKey):
            if key.key_size < MIN_RSA_BITS:
                raise FormatError(f"RSA key of {key.key_size} bits is too small (minimum {MIN_RSA_BITS})")
            if key.key_size > MAX_RSA_BITS:
                raise FormatError(f"RSA key of {key.key_size} bits is too large (maximum {MAX_RSA_BITS})")
            if key.public_numbers().e != RSA_EXPONENT:
                raise FormatError(f"RSA public exponent must be {RSA_EXPONENT}")
        elif not isinstance(key, Ed25519PublicKey):
            raise FormatError(f"key type {type(key).__name__} is not accepted (Ed25519, ECDSA, RSA)")
        self._key = key
        # The canonical DER of the key, not the submitted bytes: another encoding of the same key (a compressed
        # EC point, RSA parameters spelled otherwise) is the same signer, with one fingerprint.
        der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        self.spki = SpkiDer(der)
        self.certificate: dict[str, Any] | None = None  # identity of an X.509 signing certificate, if any
        self.keyid = ""  # the name the submission gave this key, which signatures' keyid may use

    @classmethod
    def from_pem(cls, pem: str | bytes) -> PublicKey:
        data = pem.encode() if isinstance(pem, str) else pem
        start = data.find(b"-----BEGIN")  # tools such as certtool print a description before the block
        data = data[start:] if start > 0 else data
        try:
            key = serialization.load_pem_public_key(data)
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise FormatError(f"public key is not a PEM SubjectPublicKeyInfo: {exc}") from exc
        der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        return cls(SpkiDer(der))

    @property
    def fingerprint(self) -> str:
        """Lowercase hex SHA-256 of the DER SPKI: how entries name their signers."""
        return hashlib.sha256(self.spki).hexdigest()

    def verify(self, signature: bytes, message: bytes) -> bool:
        key = self._key
        try:
            if isinstance(key, Ed25519PublicKey):
                key.verify(signature, message)
            elif isinstance(key, ec.EllipticCurvePublicKey):
                alg = hashes.SHA384() if isinstance(key.curve, ec.SECP384R1) else hashes.SHA256()
                key.verify(signature, message, ec.ECDSA(alg))
            else:
                assert isinstance(key, rsa.RSAPublicKey)
                try:
                    key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
                except InvalidSignature:
                    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO)
                    key.verify(signature, message, pss, hashes.SHA256())
        except InvalidSignature:
            return False
        return True


def _named_key(i: int, s: EnvelopeSignature, keys: Sequence[PublicKey], signatures: int) -> PublicKey:
    """The one key signature ``i`` is checked with: the only key; else the key its ``keyid`` names (the
    key's own keyid or its SPKI SHA-256); else key ``i`` when there is one key per signature."""
    if len(keys) == 1:
        return keys[0]
    if s.keyid:
        # A key listed twice is one key.
        named = list({k.fingerprint: k for k in keys if s.keyid in (k.keyid, k.fingerprint)}.values())
        if len(named) == 1:
            return named[0]
        if len(named) > 1:
            raise SignatureError(f"signature {i}'s keyid {s.keyid!r} names {len(named)} keys")
    if len(keys) == signatures:
        return keys[i]
    raise SignatureError(
        f"signature {i} names none of the {len(keys)} keys: set its keyid to a key's keyid or SPKI SHA-256, "
        "or list one key per signature in signature order"
    )


def verify_envelope(envelope: Envelope, keys: Sequence[PublicKey]) -> list[PublicKey]:
    """Check that *every* signature verifies over PAE with the key it names (see :func:`_named_key`); return
    the signing key of each. At most one check per signature (two for an RSA key: PKCS#1 v1.5, then PSS),
    so the work is bounded by :data:`MAX_SIGNATURES` whatever the submission holds.

    ``keyid`` only selects the key; what it names is then proved by the signature."""
    if not keys:
        raise SignatureError("no public key was supplied to verify the envelope with")
    message = envelope.pae()
    signers = []
    for i, s in enumerate(envelope.signatures):
        key = _named_key(i, s, keys, len(envelope.signatures))
        if not key.verify(s.sig, message):
            raise SignatureError(
                f"signature {i} does not verify over PAE(payloadType, payload) with key {key.fingerprint}"
            )
        signers.append(key)
    return signers


def sign_envelope(payload_type: str, payload: bytes, key: Ed25519PrivateKey | ec.EllipticCurvePrivateKey) -> Envelope:
    """Sign a payload into a one-signature envelope (Ed25519 or ECDSA)."""
    message = pae(payload_type, payload)
    if isinstance(key, Ed25519PrivateKey):
        sig = key.sign(message)
    else:
        alg = hashes.SHA384() if isinstance(key.curve, ec.SECP384R1) else hashes.SHA256()
        sig = key.sign(message, ec.ECDSA(alg))
    return Envelope(payload_type, payload, (EnvelopeSignature(sig),))
