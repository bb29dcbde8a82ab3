from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from atlas_log.dsse import (
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
    assert verify_envelope(parsed, [_spki(Ed25519PrivateKey.generate()), _spki(key)])[0].spki == _spki(key).spki
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
        {"payloadType": "t", "payload": "YQ==", "signatures": [{"sig": "YQ=="}] * 17},
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
