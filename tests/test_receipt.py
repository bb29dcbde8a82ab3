"""verify_leaf_for: a leaf is matched to a submission by what is signed and attested, not by encodings."""

from __future__ import annotations

import base64
import copy
import dataclasses
import hashlib
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from atlas_log.dsse import PublicKey, SpkiDer, parse_envelope, sign_envelope
from atlas_log.entry import Entry, build_body, index_summary
from atlas_log.errors import ReceiptMismatchError
from atlas_log.intoto import extract
from atlas_log.receipt import SubmittedEntry, split_submission, verify_leaf_for
from atlas_log.submission import build_submission, intoto_statement, spki_der, tdx_tee
from atlas_log.tdx.quote import parse_quote
from atlas_log.testing.simulate import SimulatedPlatform

PAYLOAD = intoto_statement([("model", "ab" * 32)], "https://atlas-log.dev/demo/v1", {"n": 1})
PAYLOAD_TYPE = "application/vnd.in-toto+json"
KEY = Ed25519PrivateKey.generate()
PLATFORM = SimulatedPlatform.create()
QUOTE_1, QUOTE_2 = PLATFORM.quote(bytes(64)), PLATFORM.quote(bytes(63) + b"\x02")


def _leaf(submission: dict[str, object], quote: bytes) -> bytes:
    """The leaf a log builds for ``submission`` attested by ``quote`` (tee summary as the log records it)."""
    envelope = parse_envelope(submission["dsseEnvelope"])
    key = PublicKey(SpkiDer(spki_der(KEY)))
    tee = {
        "type": "intel-tdx",
        "binding": "atlas-log/tdx-bind/v1",
        "signatureIndex": 0,
        "spkiSha256": key.fingerprint,
        "nonce": "00" * 32,
        "quoteSha256": hashlib.sha256(parse_quote(quote).raw).hexdigest(),
    }
    body = {**build_body(envelope, [key], None, index_summary(extract(PAYLOAD_TYPE, PAYLOAD))), "tee": tee}
    return Entry(body, 1_700_000_000, {}).leaf()


def _submission(keyid: str, quote: bytes) -> dict[str, object]:
    envelope = sign_envelope(PAYLOAD_TYPE, PAYLOAD, KEY)
    envelope = dataclasses.replace(
        envelope, signatures=tuple(dataclasses.replace(s, keyid=keyid) for s in envelope.signatures)
    )
    return build_submission(envelope, [spki_der(KEY)], tee=tdx_tee(quote))


def test_an_existing_entry_encoded_differently_is_still_this_submission() -> None:
    mine = _submission("my-key", QUOTE_1)
    existing = _leaf(_submission("", QUOTE_2), QUOTE_2)  # logged earlier: other keyid, other quote
    sent = SubmittedEntry.from_submission(mine)
    verify_leaf_for(existing, sent, new_leaf=False)  # the log answered 200 with the entry it already had
    with pytest.raises(ReceiptMismatchError, match="quote"):
        verify_leaf_for(existing, sent, new_leaf=True)  # but a new leaf must carry this quote
    verify_leaf_for(_leaf(mine, QUOTE_1), sent, new_leaf=True)


def test_another_signer_or_payload_is_not_this_submission() -> None:
    sent = SubmittedEntry.from_submission(_submission("", QUOTE_1))
    other_key = Ed25519PrivateKey.generate()
    envelope = sign_envelope(PAYLOAD_TYPE, PAYLOAD, other_key)
    theirs = build_body(
        envelope, [PublicKey(SpkiDer(spki_der(other_key)))], None, index_summary(extract(PAYLOAD_TYPE, PAYLOAD))
    )
    with pytest.raises(ReceiptMismatchError) as e:
        verify_leaf_for(Entry(theirs, 1, {}).leaf(), sent, new_leaf=False)
    assert e.value.field == "signatures"


# --- split_submission: what a served submission shows as verified is what the leaf commits to -----------------


def test_an_honest_submission_is_all_committed() -> None:
    sub = _submission("my-key", QUOTE_1)
    committed, rest = split_submission(_leaf(sub, QUOTE_1), sub)
    assert committed == sub and rest == {}


def test_what_the_leaf_does_not_commit_to_is_never_committed() -> None:
    """A log serving the entry's submission invents a signature keyid (the leaf records another), key names, a
    PEM text, an extra key, an event log, a signature index of ``true`` and another quote: none of it is shown as
    committed; the recorded key is, as DER SPKI."""
    honest = _submission("my-key", QUOTE_1)
    leaf = _leaf(honest, QUOTE_1)
    other_quote = base64.b64encode(QUOTE_2).decode()
    served = copy.deepcopy(honest)
    env = served["dsseEnvelope"]
    env["signatures"] = [{**env["signatures"][0], "keyid": "invented"}]
    spki = served["verificationMaterial"]["publicKeys"][0]["spki"]
    pem = KEY.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    extra = base64.b64encode(spki_der(Ed25519PrivateKey.generate())).decode()
    served["verificationMaterial"]["publicKeys"] = [
        {"spki": spki, "keyid": "invented-name"},
        {"pem": "invented preamble\n" + pem.decode()},
        {"spki": extra},
    ]
    served["tee"] = {**served["tee"], "eventLog": "invented", "signatureIndex": True, "quote": other_quote}
    served["annotations"] = {"by": "invented"}
    committed, rest = split_submission(leaf, served)
    assert "invented" not in json.dumps(committed) and extra not in json.dumps(committed)
    assert committed == {
        "apiVersion": honest["apiVersion"],
        "verificationMaterial": {"publicKeys": [{"spki": spki}]},
        "tee": {k: v for k, v in honest["tee"].items() if k != "quote"},
    }
    assert rest["dsseEnvelope"] == env and "envelopeHash" in rest["envelopeMismatch"]
    assert rest["verificationMaterial"]["publicKeys"] == served["verificationMaterial"]["publicKeys"]
    assert rest["tee"] == {"eventLog": "invented", "signatureIndex": True, "quote": other_quote}
    assert rest["annotations"] == {"by": "invented"}


def test_a_leaf_without_attestation_commits_to_no_tee() -> None:
    sub = _submission("", QUOTE_1)
    envelope = parse_envelope(sub["dsseEnvelope"])
    body = build_body(
        envelope, [PublicKey(SpkiDer(spki_der(KEY)))], None, index_summary(extract(PAYLOAD_TYPE, PAYLOAD))
    )
    committed, rest = split_submission(Entry(body, 1, {}).leaf(), sub)
    assert "tee" not in committed and rest == {"tee": sub["tee"]}
    assert committed["dsseEnvelope"] == sub["dsseEnvelope"]
