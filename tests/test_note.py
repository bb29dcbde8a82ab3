from __future__ import annotations

import pytest

from atlas_log.errors import FormatError, SignatureError
from atlas_log.note import Signer, Verifier, format_note, key_id, open_note, parse_note

# The worked example of the C2SP signed-note spec.
SPEC_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
SPEC_NOTE = (
    "This is an example message.\n\n"
    "— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
).encode()
# The Go sumdb/note key pair that tooling uses as the private-key text form example.
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"


def test_spec_example_verifies() -> None:
    v = Verifier.from_vkey(SPEC_VKEY)
    assert v.vkey == SPEC_VKEY
    note, sigs = open_note(SPEC_NOTE, [v])
    assert note.text == "This is an example message.\n"
    assert [s.name for s in sigs] == ["example.com/foo"]
    assert note.to_bytes() == SPEC_NOTE


def test_private_key_form_round_trips() -> None:
    s = Signer.from_skey(PETER_SKEY)
    assert s.verifier.vkey == PETER_VKEY
    assert s.skey == PETER_SKEY
    msg = format_note(
        "If you think cryptography is the answer to your problem,\n",
        [s.sign("If you think cryptography is the answer to your problem,\n")],
    )
    open_note(msg, [Verifier.from_vkey(PETER_VKEY)])


def test_tampered_text_fails() -> None:
    bad = SPEC_NOTE.replace(b"example message", b"exemple message")
    with pytest.raises(SignatureError):
        open_note(bad, [Verifier.from_vkey(SPEC_VKEY)])


def test_unknown_keys_are_ignored_but_one_known_is_required() -> None:
    a, b = Signer.generate("log.example/a"), Signer.generate("log.example/a")  # same name, other key
    text = "hello\n"
    msg = format_note(text, [b.sign(text), a.sign(text)])
    _, sigs = open_note(msg, [a.verifier])
    assert len(sigs) == 1
    with pytest.raises(SignatureError, match="no signature from a trusted key"):
        open_note(format_note(text, [b.sign(text)]), [a.verifier])


def test_known_key_with_bad_signature_rejects_note() -> None:
    a = Signer.generate("log.example")
    text = "hello\n"
    good = a.sign(text)
    forged = type(good)(good.name, good.key_id, bytes(64))
    with pytest.raises(SignatureError, match="does not verify"):
        open_note(format_note(text, [good, forged]), [a.verifier])


@pytest.mark.parametrize(
    "msg",
    [
        b"no blank line\n\xe2\x80\x94 a AAAAAAA=\n",
        b"text\n\n",
        b"text\n\n\xe2\x80\x94 a AAAAAAA=",
        b"text\n\n- a AAAAAAA=\n",
        b"te\x01xt\n\n\xe2\x80\x94 a AAAAAAAA\n",
        b"text\n\n\xe2\x80\x94 a+b AAAAAAAA\n",
        b"text\n\n\xe2\x80\x94 a AAAA\n",
        b"text\n\n\xe2\x80\x94 a AAAAAAA\n",
        b"\xff\n\n\xe2\x80\x94 a AAAAAAAA\n",
        b"text\n\n" + b"\xe2\x80\x94 a AAAAAAAAAA==\n" * 101,
    ],
)
def test_malformed_notes_rejected(msg: bytes) -> None:
    with pytest.raises(FormatError):
        parse_note(msg)


def test_blank_lines_inside_text_are_allowed() -> None:
    s = Signer.generate("x")
    text = "a\n\nb\n"
    note, _ = open_note(format_note(text, [s.sign(text)]), [s.verifier])
    assert note.text == text


@pytest.mark.parametrize(
    "vkey",
    [
        "example.com/foo+530d903b+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",  # wrong ID
        "example.com/foo+530d903a+AukyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",  # wrong type
        "example.com/foo+530d903a",
        "example com+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
        "example.com/foo+530D903A+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
    ],
)
def test_bad_vkeys_rejected(vkey: str) -> None:
    with pytest.raises(FormatError):
        Verifier.from_vkey(vkey)


def test_key_id_formula() -> None:
    v = Verifier.from_vkey(SPEC_VKEY)
    assert key_id(v.name, 1, v.public_key) == 0x530D903A
