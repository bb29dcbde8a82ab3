from __future__ import annotations

import base64
import secrets

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from atlas_log.dsse import (
    MAX_SIGNATURES,
    Envelope,
    EnvelopeSignature,
    PublicKey,
    SpkiDer,
    pae,
    parse_envelope,
    sign_envelope,
    verify_envelope,
)
from atlas_log.errors import FormatError, SignatureError


def _spki(key: object) -> PublicKey:
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)  # type: ignore[attr-defined]
    return PublicKey(SpkiDer(der))


def test_pae_spec_vector() -> None:
    assert (
        pae("http://example.com/HelloWorld", b"hello world")
        == b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


@pytest.mark.parametrize(
    "key",
    [Ed25519PrivateKey.generate(), ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP384R1())],
    ids=["ed25519", "p256", "p384"],
)
def test_sign_verify_round_trip(key: object) -> None:
    env = sign_envelope("text/plain", b"payload", key)  # type: ignore[arg-type]
    parsed = parse_envelope(env.to_json())
    assert parsed == env
    assert verify_envelope(parsed, [_spki(key)])[0].spki == _spki(key).spki
    tampered = Envelope("text/plain", b"payloaD", env.signatures)
    with pytest.raises(SignatureError):
        verify_envelope(tampered, [_spki(key)])
    retyped = Envelope("text/other", b"payload", env.signatures)
    with pytest.raises(SignatureError):
        verify_envelope(retyped, [_spki(key)])


@pytest.mark.parametrize("pss", [False, True])
def test_rsa_pkcs1_and_pss(pss: bool) -> None:
    key = rsa.generate_private_key(65537, 2048)
    msg = pae("t", b"p")
    if pss:
        sig = key.sign(msg, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256())
    else:
        sig = key.sign(msg, padding.PKCS1v15(), hashes.SHA256())
    verify_envelope(Envelope("t", b"p", (EnvelopeSignature(sig),)), [_spki(key)])


def test_weak_and_foreign_keys_rejected() -> None:
    with pytest.raises(FormatError, match="too small"):
        _spki(rsa.generate_private_key(65537, 1024))  # noqa: S505 (the point is that it is refused)
    with pytest.raises(FormatError, match="curve"):
        _spki(ec.generate_private_key(ec.SECP521R1()))
    with pytest.raises(FormatError):
        PublicKey(SpkiDer(b"not der"))


def test_every_signature_must_verify() -> None:
    a, b = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    env = sign_envelope("t", b"p", a)
    both = Envelope("t", b"p", (env.signatures[0], EnvelopeSignature(b.sign(pae("t", b"q")))))
    with pytest.raises(SignatureError, match="signature 1"):
        verify_envelope(both, [_spki(a), _spki(b)])
    with pytest.raises(SignatureError):
        verify_envelope(env, [])


@pytest.mark.parametrize(
    "obj",
    [
        [],
        {"payloadType": "t", "payload": "YQ==", "signatures": []},
        {"payloadType": "", "payload": "YQ==", "signatures": [{"sig": "YQ=="}]},
        {"payloadType": "t", "payload": "YQ", "signatures": [{"sig": "YQ=="}]},
        {"payloadType": "t", "payload": "YR==", "signatures": [{"sig": "YQ=="}]},
        {"payloadType": "t", "payload": "YQ==", "signatures": [{"sig": ""}]},
        {"payloadType": "t", "payload": "YQ==", "signatures": [{"sig": "YQ==", "x": 1}]},
        {"payloadType": "t", "payload": "YQ==", "signatures": [{"sig": "YQ=="}], "extra": 1},
        {"payloadType": 5, "payload": "YQ==", "signatures": [{"sig": "YQ=="}]},
        {"payloadType": "t", "payload": "YQ==", "signatures": [{"sig": "YQ=="}] * (MAX_SIGNATURES + 1)},
    ],
)
def test_strict_parse(obj: object) -> None:
    with pytest.raises(FormatError):
        parse_envelope(obj)


def test_pem_keys() -> None:
    key = Ed25519PrivateKey.generate()
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert PublicKey.from_pem(pem).fingerprint == _spki(key).fingerprint
    assert base64.b64encode(bytes.fromhex(_spki(key).fingerprint))


def _rsa_spki(e: int, bits: int) -> SpkiDer:
    n = secrets.randbits(bits) | (1 << (bits - 1)) | 1  # the shape of a modulus is all the checks see
    key = rsa.RSAPublicNumbers(e, n).public_key()
    return SpkiDer(key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))


def test_rsa_keys_are_bounded_before_any_work() -> None:
    """A long public exponent makes each check cost a private-key operation, a long modulus more: only
    e = 65537 and 2048..4096-bit moduli are accepted."""
    for bits in (2048, 3072, 4096):
        PublicKey(_rsa_spki(65537, bits))
    for e, bits in ((3, 2048), (secrets.randbits(2000) | 1, 2048), (65537, 4104), (65537, 8192)):
        with pytest.raises(FormatError, match="RSA"):
            PublicKey(_rsa_spki(e, bits))


def test_each_signature_is_checked_against_the_key_it_names() -> None:
    a, b, c = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    ka, kb, kc = _spki(a), _spki(b), _spki(c)
    sig_b = sign_envelope("t", b"p", b).signatures[0].sig
    # By keyid: the key's SPKI SHA-256 (or the keyid the submission gave it).
    named = Envelope("t", b"p", (EnvelopeSignature(sig_b, kb.fingerprint),))
    assert verify_envelope(named, [ka, kb, kc]) == [kb]
    kb.keyid = "builder"
    assert verify_envelope(Envelope("t", b"p", (EnvelopeSignature(sig_b, "builder"),)), [ka, kb]) == [kb]
    # By position: signature i is checked with key i only, not with every key.
    both = Envelope("t", b"p", (sign_envelope("t", b"p", a).signatures[0], EnvelopeSignature(sig_b)))
    assert verify_envelope(both, [ka, kb]) == [ka, kb]
    with pytest.raises(SignatureError, match="signature 0"):
        verify_envelope(both, [kb, ka])
    # A signature that names no key is refused with what to fix, not tried against all of them.
    with pytest.raises(SignatureError, match="keyid"):
        verify_envelope(Envelope("t", b"p", (EnvelopeSignature(sig_b),)), [ka, kb, kc])
    assert MAX_SIGNATURES <= 4
