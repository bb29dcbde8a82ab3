from __future__ import annotations

import hashlib
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from atlas_log._encoding import b64decode, hexdecode
from atlas_log.dsse import PublicKey, SpkiDer, parse_envelope, verify_envelope
from atlas_log.entry import MAX_LEAF_SIZE, Entry, build_body, canonical_json, parse_leaf
from atlas_log.errors import FormatError
from atlas_log.submission import demo_submission


def _entry(t: int = 1700000000) -> Entry:
    sub = demo_submission(Ed25519PrivateKey.generate(), 1)
    env = parse_envelope(sub["dsseEnvelope"])
    keys = [PublicKey(SpkiDer(b64decode(k["spki"]))) for k in sub["verificationMaterial"]["publicKeys"]]
    return Entry(build_body(env, verify_envelope(env, keys)), t)


def test_leaf_round_trip_and_ids() -> None:
    e = _entry()
    leaf = e.leaf()
    assert parse_leaf(leaf) == e
    assert e.entry_id == hashlib.sha256(canonical_json(e.body)).digest()
    assert _entry().entry_id != e.entry_id  # a different signed statement is a different entry
    assert Entry(e.body, 5).entry_id == e.entry_id  # the id ignores integration time
    body = e.body
    assert body["predicateType"] == "https://atlas-log.dev/demo/v1"
    assert body["signatures"][0]["verifier"]["spkiSha256"]


def test_non_canonical_leaves_rejected() -> None:
    e = _entry()
    pretty = json.dumps({"body": e.body, "integratedTime": e.integrated_time}, indent=1).encode()
    with pytest.raises(FormatError, match="canonical"):
        parse_leaf(pretty)
    for bad in (b"[]", b"{}", b'{"body":{},"integratedTime":true}', b"nope"):
        with pytest.raises(FormatError):
            parse_leaf(bad)


def test_leaf_size_cap() -> None:
    with pytest.raises(FormatError):
        Entry({"x": "a" * MAX_LEAF_SIZE}, 1).leaf()


def test_canonical_json_is_rfc8785() -> None:
    assert canonical_json({"b": 1, "a": [1.0, "é"]}) == '{"a":[1,"é"],"b":1}'.encode()


@pytest.mark.parametrize("text", ["ABC", "0", "zz", "0A"])
def test_hex_is_strict(text: str) -> None:
    with pytest.raises(FormatError):
        hexdecode(text)


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**60), 2**60)
    | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=500, deadline=None)
@given(JSON)
def test_canonical_json_fast_path_equals_rfc8785(value: object) -> None:
    import rfc8785

    try:
        want = rfc8785.dumps(value)
    except Exception:
        with pytest.raises(FormatError):
            canonical_json(value)
        return
    assert canonical_json(value) == want


def test_control_characters_and_unicode_escape_like_rfc8785() -> None:
    import rfc8785

    value = {"k": '\x00\x01\x08\t\n\x0b\x0c\r\x1f"\\\x7f\u2028é😀', "é": 1, "z": [True, None, -5]}
    assert canonical_json(value) == rfc8785.dumps(value)


def test_entry_id_ignores_the_tee_verdict() -> None:
    from atlas_log.entry import entry_id

    e = _entry()
    tee = {
        "type": "intel-tdx",
        "binding": "atlas-log/tdx-bind/v1",
        "quoteSha256": "ab" * 32,
        "nonce": "00" * 32,
        "tcbStatus": "UpToDate",
        "collateral": {"set": "1"},
    }
    a = {**e.body, "tee": tee}
    refreshed = {**e.body, "tee": {**tee, "collateral": {"set": "2"}, "tcbStatus": "OutOfDate"}}
    other_quote = {**e.body, "tee": {**tee, "quoteSha256": "cd" * 32}}
    assert entry_id(a) == entry_id(refreshed) != entry_id(other_quote)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(st.sampled_from(["apiVersion", "tee", "index", "é", "signatures"]), JSON, max_size=5),
    st.none() | st.dictionaries(st.sampled_from(["type", "quoteSha256", "tcbStatus", "nonce"]), st.text(), max_size=4),
)
def test_encode_body_equals_the_general_encoding(body: dict, tee: dict | None) -> None:  # type: ignore[type-arg]
    from atlas_log.entry import encode_body

    if tee is not None:
        body = {**body, "tee": tee}
    try:
        want_body = canonical_json(body)
    except FormatError:
        return
    identity = dict(body)
    keep = ("type", "binding", "signatureIndex", "spkiSha256", "nonce", "quoteSha256", "keyAttestationEntry")
    if isinstance(body.get("tee"), dict):
        identity["tee"] = {k: v for k, v in body["tee"].items() if k in keep}
    assert encode_body(body) == (want_body, hashlib.sha256(canonical_json(identity)).digest())
