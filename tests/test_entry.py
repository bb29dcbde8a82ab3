from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from atlas_log._encoding import b64decode, hexdecode
from atlas_log.dsse import PublicKey, SpkiDer, parse_envelope, verify_envelope
from atlas_log.entry import (
    MAX_LEAF_SIZE,
    Entry,
    IndexRow,
    build_body,
    build_entry,
    canonical_json,
    index_summary,
    parse_leaf,
)
from atlas_log.errors import FormatError
from atlas_log.intoto import extract
from atlas_log.submission import parse_submission, parse_tee
from atlas_log.tdx.quote import TdReport, attestation_id, parse_quote
from atlas_log.tdx.verdict import Verdict
from atlas_log.tee import Attestation, InheritedAttestation, OwnQuote, TeeRecord, VerdictRecord
from atlas_log.testing.demo import demo_submission
from tests.data import entry_bodies


def _entry(t: int = 1700000000) -> Entry:
    sub = demo_submission(Ed25519PrivateKey.generate(), 1)
    env = parse_envelope(sub["dsseEnvelope"])
    keys = [PublicKey(SpkiDer(b64decode(k["spki"]))) for k in sub["verificationMaterial"]["publicKeys"]]
    return Entry(
        build_body(env, verify_envelope(env, keys), None, index_summary(extract(env.payload_type, env.payload))), t
    )


def test_leaf_round_trip_and_ids() -> None:
    e = _entry()
    leaf = e.leaf()
    assert parse_leaf(leaf) == e
    pae = e.body["paeHash"]["sha256"]
    signer = e.body["signatures"][0]["verifier"]["spkiSha256"]
    assert e.entry_id == hashlib.sha256(f"atlas-log/entry-id/v2\n{pae}\n{signer}\n".encode()).digest()
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


def test_entry_id_is_what_was_signed_and_by_whom() -> None:
    """Only the PAE digest and the set of signer keys decide identity: the TEE verdict, the quote, keyid hints,
    signature bytes and signature order do not; another statement or another signer set does."""
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
    sig = e.body["signatures"][0]
    same = [
        {**e.body, "tee": {**tee, "collateral": {"set": "2"}, "tcbStatus": "OutOfDate"}},
        {**e.body, "tee": {**tee, "quoteSha256": "cd" * 32}},
        {**a, "signatures": [{**sig, "keyid": "other", "sig": "AAAA"}]},
        {**a, "signatures": [sig, {**sig, "sig": "BBBB"}]},  # the same key twice: the same signer set
        {**a, "envelopeHash": {"sha256": "00" * 32}},
    ]
    assert all(entry_id(b) == entry_id(a) for b in same)
    # Attested and unattested are distinct entries, so an unattested copy cannot pre-empt an attestation.
    assert entry_id({**e.body, "tee": None}) != entry_id(a)
    cosigned = {**a, "signatures": [sig, {**sig, "verifier": {"spkiSha256": "ee" * 32}}]}
    assert entry_id(cosigned) != entry_id(a)
    assert entry_id({**cosigned, "signatures": cosigned["signatures"][::-1]}) == entry_id(cosigned)
    assert entry_id({**a, "paeHash": {"sha256": "11" * 32}}) != entry_id(a)
    for broken in ({**a, "paeHash": None}, {**a, "signatures": []}, {**a, "paeHash": {"sha256": "AB" * 32}}):
        with pytest.raises(FormatError):
            entry_id(broken)


def test_receipts_with_the_v1_entry_id_still_verify() -> None:
    """Receipts issued before the v2 identity carry the v1 entryId; the body decides both."""
    from atlas_log.entry import legacy_entry_id

    e = _entry()
    keep = ("type", "binding", "signatureIndex", "spkiSha256", "nonce", "quoteSha256", "keyAttestationEntry")
    body = {**e.body, "tee": {"type": "intel-tdx", "quoteSha256": "ab" * 32, "tcbStatus": "UpToDate"}}
    reduced = {**body, "tee": {k: v for k, v in body["tee"].items() if k in keep}}
    assert legacy_entry_id(body) == hashlib.sha256(canonical_json(reduced)).digest()


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(st.sampled_from(["apiVersion", "index", "é", "envelopeHash", "payloadType"]), JSON),
    st.lists(st.tuples(st.text(max_size=8), st.text(max_size=8)), max_size=3),
)
def test_entry_id_ignores_every_other_member(
    extra: dict,
    signatures: list[tuple[str, str]],  # type: ignore[type-arg]
) -> None:
    from atlas_log.entry import encode_body, entry_id

    e = _entry()
    verifier = e.body["signatures"][0]["verifier"]
    mutated = {
        **e.body,
        **extra,
        "signatures": [{"keyid": k, "sig": g, "verifier": verifier} for k, g in signatures] or e.body["signatures"],
    }
    assert entry_id(mutated) == e.entry_id
    try:
        want = canonical_json(mutated)
    except FormatError:
        return
    assert encode_body(mutated) == (want, e.entry_id)


# --- the entry builder -------------------------------------------------------------------------------------


def _td_report(td: dict[str, Any]) -> TdReport:
    """A TD report from the hex fields recorded beside the bodies (what the log records of it)."""
    fields = {k: bytes.fromhex(v) for k, v in td.items() if k != "rtmr"}
    absent = {k: b"" for k in ("mr_signer_seam", "seam_attributes") if k not in fields}
    return TdReport(**fields, **absent, rtmr=tuple(bytes.fromhex(r) for r in td["rtmr"]))  # type: ignore[arg-type]


def _attestation(case: dict[str, Any]) -> Attestation | None:
    """The attestation the gate established for a recorded case, from the verdict it recorded."""
    if case["verdict"] is None:
        return None
    sub = parse_submission(case["submission"], entry_bodies()["now"])
    request = parse_tee(sub.tee, len(sub.signers))
    v = case["verdict"]
    verdict = Verdict(
        v["accept"],
        tcb_status=v["tcb_status"],
        advisory_ids=tuple(v["advisory_ids"]),
        fmspc=v["fmspc"],
        tcb_evaluation_data_number=v["tcb_evaluation_data_number"],
        quote_version=v["quote_version"],
        td=_td_report(v["td"]),
        collateral_expiry=v["collateral_expiry"],
        collateral_digests=v["collateral_digests"],
    )
    evidence: OwnQuote | InheritedAttestation
    if request.quote is not None:
        evidence = OwnQuote.of(parse_quote(request.quote), verdict, case["collateralSet"])
    else:
        assert request.key_attestation_entry is not None
        evidence = InheritedAttestation(request.key_attestation_entry, VerdictRecord.of(verdict, case["collateralSet"]))
    return Attestation(request, evidence, case["simulated"], case["nonceCheckpointSize"])


@pytest.mark.parametrize("case", entry_bodies()["entries"], ids=lambda c: c["case"])
def test_built_entries_are_byte_for_byte_the_logged_ones(case: dict[str, Any]) -> None:
    """An entry with its own quote, a key-attested entry, an unattested one, and payloads that are no in-toto
    statement: bodies recorded before the builder was typed are rebuilt exactly, and their tee records read
    back to the same JSON."""
    sub = parse_submission(case["submission"], entry_bodies()["now"])
    built = build_entry(sub, _attestation(case))
    assert built.body == case["body"].encode()
    assert built.entry_id.hex() == case["entryId"]
    logged = json.loads(case["body"])
    assert (built.tee.to_json() if built.tee is not None else None) == logged["tee"]
    if logged["tee"] is not None:
        assert TeeRecord.from_json(logged["tee"]) == built.tee
        assert canonical_json(TeeRecord.from_json(logged["tee"]).to_json()) == canonical_json(logged["tee"])
    leaf = built.leaf(7, {d: None for d in built.linked})
    assert parse_leaf(leaf).tee == built.tee
    assert len(leaf) <= built.leaf_size_bound()


def test_built_entry_carries_its_index_rows_and_attestation_id() -> None:
    cases = {c["case"]: c for c in entry_bodies()["entries"]}
    quote = cases["quote"]
    sub = parse_submission(quote["submission"], entry_bodies()["now"])
    built = build_entry(sub, _attestation(quote))
    request = parse_tee(sub.tee, 1)
    assert request.quote is not None and built.attestation_id == attestation_id(request.quote)
    assert built.predicate_type == "https://slsa.dev/provenance/v1"
    assert built.linked == ("sha256:" + "ab" * 32, "sha256:" + "cd" * 32, "sha256:" + "ef" * 32)
    signer = sub.signers[0].fingerprint
    assert built.rows == (
        IndexRow("sha256:" + "ab" * 32, "subject", "model.pt", "$.subject[0]", None),
        IndexRow("sha256:" + "ef" * 32, "material", "ds", "$.predicate.buildDefinition.resolvedDependencies[0]", "2"),
        IndexRow("sha256:" + "cd" * 32, "material", None, "$.predicate.buildDefinition.externalParameters.data", None),
        IndexRow(f"sha256:{signer}", "signer", None, "$.signatures[0]", None),
    )
    key = build_entry(parse_submission(cases["key"]["submission"], 0), _attestation(cases["key"]))
    assert key.attestation_id is None  # no quote of its own: nothing to spend
    manifest = build_entry(parse_submission(cases["manifest"]["submission"], 0))
    # An Atlas manifest's type is indexed, but it is no statement's predicate: the body names none.
    assert manifest.predicate_type == "application/vnd.atlas-cli.manifest+json"
    assert json.loads(manifest.body)["predicateType"] is None
