from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from atlas_log.cosignature import (
    DEFAULT_COSIGNATURE_MAX_FUTURE_S,
    CosignatureSigner,
    CosignatureVerifier,
    CosignatureWindow,
    verify_cosignatures,
)
from atlas_log.errors import FormatError, SignatureError
from atlas_log.note import Note, NoteSignature, Signer

TEXT = "example.com/log\n5\n" + "A" * 43 + "=\n"


def test_sign_verify_and_key_id() -> None:
    s = CosignatureSigner("witness.example", Ed25519PrivateKey.generate())
    v = s.verifier
    assert v.key_id == int.from_bytes(hashlib.sha256(b"witness.example\n\x04" + v.public_key).digest()[:4], "big")
    sig = s.sign(TEXT, 1679315147)
    assert len(sig.signature) == 72 and v.timestamp(TEXT, sig.signature) == 1679315147
    assert CosignatureVerifier.from_vkey(v.vkey).key_id == v.key_id
    forged_time = (1679315148).to_bytes(8, "big") + sig.signature[8:]
    assert v.timestamp(TEXT, forged_time) is None
    assert v.timestamp(TEXT.replace("5", "6"), sig.signature) is None


def test_log_vkey_is_rekeyed_as_cosigner() -> None:
    log = Signer.generate("witness.example")
    v = CosignatureVerifier.from_vkey(log.verifier.vkey)
    assert v.public_key == log.verifier.public_key and v.key_id != log.verifier.key_id
    with pytest.raises(FormatError):
        CosignatureVerifier.from_vkey("witness.example+00000000+AQ==")


def test_quorum() -> None:
    a, b = (CosignatureSigner(f"w{i}.example", Ed25519PrivateKey.generate()) for i in range(2))
    note = Note(TEXT, (a.sign(TEXT, 100), b.sign(TEXT, 101)))
    assert verify_cosignatures(note, [a.verifier, b.verifier], 2, now=200) == ["w0.example", "w1.example"]
    with pytest.raises(SignatureError, match="only 1 of the required 2"):
        verify_cosignatures(Note(TEXT, (a.sign(TEXT, 100),)), [a.verifier, b.verifier], 2, now=200)
    bad = NoteSignature(a.verifier.name, a.verifier.key_id, bytes(76))
    with pytest.raises(SignatureError, match="does not verify"):
        verify_cosignatures(Note(TEXT, (bad,)), [a.verifier], 1, now=200)


def test_cosigner_vkey_whose_key_id_does_not_match_is_refused() -> None:
    """signed-note §Verifier keys: the ID in a vkey is hash(name, type, key). A 0x01 vkey for a cosigner is
    re-keyed as 0x04, but its own ID must still be the 0x01 ID of that name and key, or a typo (or a swapped
    name) would silently pin a different witness identity than the operator wrote down."""
    log = Signer.generate("witness.example")
    name, kid, key = log.verifier.vkey.split("+", 2)
    wrong_id = f"{name}+{int(kid, 16) ^ 1:08x}+{key}"
    other_name = f"witness.other+{kid}+{key}"
    cname, ckid, ckey = CosignatureSigner("witness.example", Ed25519PrivateKey.generate()).verifier.vkey.split("+", 2)
    wrong_0x04 = f"{cname}+{int(ckid, 16) ^ 1:08x}+{ckey}"
    for vkey in (wrong_id, other_name, wrong_0x04):
        with pytest.raises(FormatError, match="key ID"):
            CosignatureVerifier.from_vkey(vkey)


def test_cosignature_timestamps_are_checked_against_the_verifiers_clock() -> None:
    """tlog-cosignature §Signed message: verifiers MAY reject future timestamps. A cosignature dated ahead
    of the verifier's clock (a witness key that pre-dated its cosignatures, or a badly skewed witness) would
    pass any freshness bound for as long as its date lies ahead, so it does not count toward the quorum;
    with a maximum age, neither does a cosignature that says nothing about the present."""
    a, b = (CosignatureSigner(f"w{i}.example", Ed25519PrivateKey.generate()) for i in range(2))
    now = 1_800_000_000
    ahead = now + DEFAULT_COSIGNATURE_MAX_FUTURE_S
    note = Note(TEXT, (a.sign(TEXT, ahead), b.sign(TEXT, ahead + 1)))
    with pytest.raises(SignatureError, match=r"w1\.example.*1 s beyond the allowed clock skew"):
        verify_cosignatures(note, [a.verifier, b.verifier], 2, now=now)
    assert verify_cosignatures(note, [a.verifier, b.verifier], 1, now=now) == ["w0.example"]
    assert verify_cosignatures(note, [a.verifier, b.verifier], 2, now=now + 1) == ["w0.example", "w1.example"]

    old = Note(TEXT, (a.sign(TEXT, now - 3600), b.sign(TEXT, now - 60)))
    assert verify_cosignatures(old, [a.verifier, b.verifier], 2, now=now) == ["w0.example", "w1.example"]
    fresh = CosignatureWindow(max_age_s=600)
    with pytest.raises(SignatureError, match=r"w0\.example.*3600 s old.*600 s"):
        verify_cosignatures(old, [a.verifier, b.verifier], 2, now=now, window=fresh)
    assert verify_cosignatures(old, [a.verifier, b.verifier], 1, now=now, window=fresh) == ["w1.example"]
    with pytest.raises(FormatError):
        CosignatureWindow(max_future_s=-1)


def test_a_cosignature_dated_zero_never_counts() -> None:
    """tlog-witness: a checkpoint cosignature's timestamp MUST NOT be zero (0 is reserved for subtree
    cosignatures, which say nothing about time). A witness key that signed one must not satisfy a policy."""
    key = Ed25519PrivateKey.generate()
    w = CosignatureSigner("w0.example", key).verifier
    sig = key.sign(f"cosignature/v1\ntime 0\n{TEXT}".encode())
    note = Note(TEXT, (NoteSignature(w.name, w.key_id, bytes(8) + sig),))
    assert w.timestamp(TEXT, bytes(8) + sig) == 0  # the signature itself is valid
    with pytest.raises(SignatureError, match="dated 0"):
        verify_cosignatures(note, [w], 1, now=1_800_000_000)
