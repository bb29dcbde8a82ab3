"""verify_leaf_for: a leaf is matched to a submission by what is signed and attested, not by encodings."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from atlas_log.dsse import PublicKey, SpkiDer, parse_envelope, sign_envelope
from atlas_log.entry import Entry, build_body, index_summary
from atlas_log.errors import ReceiptMismatchError
from atlas_log.intoto import extract
from atlas_log.receipt import SubmittedEntry, verify_leaf_for
from atlas_log.submission import build_submission, intoto_statement, spki_der, tdx_tee

PAYLOAD = intoto_statement([("model", "ab" * 32)], "https://atlas-log.dev/demo/v1", {"n": 1})
PAYLOAD_TYPE = "application/vnd.in-toto+json"
KEY = Ed25519PrivateKey.generate()


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
        "quoteSha256": hashlib.sha256(quote).hexdigest(),
    }
    body = build_body(envelope, [key], tee, index_summary(extract(PAYLOAD_TYPE, PAYLOAD)))
    return Entry(body, 1_700_000_000, {}).leaf()


def _submission(keyid: str, quote: bytes) -> dict[str, object]:
    envelope = sign_envelope(PAYLOAD_TYPE, PAYLOAD, KEY)
    envelope = dataclasses.replace(
        envelope, signatures=tuple(dataclasses.replace(s, keyid=keyid) for s in envelope.signatures)
    )
    return build_submission(envelope, [spki_der(KEY)], tee=tdx_tee(quote))


def test_an_existing_entry_encoded_differently_is_still_this_submission() -> None:
    mine = _submission("my-key", b"quote-1")
    existing = _leaf(_submission("", b"quote-2"), b"quote-2")  # logged earlier: other keyid, other quote
    sent = SubmittedEntry.from_submission(mine)
    verify_leaf_for(existing, sent, new_leaf=False)  # the log answered 200 with the entry it already had
    with pytest.raises(ReceiptMismatchError, match="quote"):
        verify_leaf_for(existing, sent, new_leaf=True)  # but a new leaf must carry this quote
    verify_leaf_for(_leaf(mine, b"quote-1"), sent, new_leaf=True)


def test_another_signer_or_payload_is_not_this_submission() -> None:
    sent = SubmittedEntry.from_submission(_submission("", b"q"))
    other_key = Ed25519PrivateKey.generate()
    envelope = sign_envelope(PAYLOAD_TYPE, PAYLOAD, other_key)
    theirs = build_body(
        envelope, [PublicKey(SpkiDer(spki_der(other_key)))], None, index_summary(extract(PAYLOAD_TYPE, PAYLOAD))
    )
    with pytest.raises(ReceiptMismatchError) as e:
        verify_leaf_for(Entry(theirs, 1, {}).leaf(), sent, new_leaf=False)
    assert e.value.field == "signatures"
