"""End-to-end: a real server process over HTTP."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from atlas_log.checkpoint import open_checkpoint
from atlas_log.client import LogClient
from atlas_log.errors import FormatError, VerificationError
from atlas_log.merkle import LeafHash, leaf_hash, verify_consistency, verify_inclusion
from atlas_log.note import Verifier
from atlas_log.receipt import Receipt, verify_receipt
from atlas_log.testing.demo import demo_submission
from atlas_log.tiles import TileLevels, TileSource, parse_entry_bundle, proof_tiles
from tests.conftest import ServerProcess

PROBLEM = "https://atlas-log.dev/problems/"


def problem(resp: httpx.Response, status: int, slug: str) -> None:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    body = resp.json()
    assert body["type"] == PROBLEM + slug, body
    assert body["detail"]


@pytest.fixture
def http(server: ServerProcess) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=30)


def test_submit_returns_verified_receipt_and_resubmission_is_idempotent(
    server: ServerProcess, http: httpx.Client
) -> None:
    key = Ed25519PrivateKey.generate()
    sub = demo_submission(key, 0, server.platform)
    r = http.post("/api/v1/entries", json=sub)
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) >= {"logIndex", "leafHash", "inclusionProof", "checkpoint"}
    assert set(body["inclusionProof"]) == {"logIndex", "treeSize", "hashes"}
    cp = verify_receipt(body, server.vkey)
    assert cp.size == 1
    time.sleep(1.1)  # a later second: nothing time-dependent may enter the deduplication key
    again = http.post("/api/v1/entries", json=sub)
    assert again.status_code == 200
    assert again.json()["logIndex"] == body["logIndex"]
    assert httpx.get(server.url + "/api/v1/log").json()["treeSize"] == 1


def test_reads_agree_with_each_other(server: ServerProcess, http: httpx.Client) -> None:
    client = LogClient(http, server.vkey)
    key = Ed25519PrivateKey.generate()
    platform = server.platform
    receipts = [client.submit(demo_submission(key, i, platform)) for i in range(300)]
    cp, _ = client.checkpoint()
    assert cp.size == 300
    v = Verifier.from_vkey(server.vkey)
    assert open_checkpoint(http.get("/checkpoint").content, v) == cp
    for r in receipts[::37]:
        client.verify_inclusion(r.leaf_hash, r.log_index, cp)
        entry = http.get(f"/api/v1/entries/{r.log_index}").json()
        assert base64.b64decode(entry["leaf"]) == r.leaf
        by_hash = http.get("/api/v1/entries", params={"leafHash": base64.b64encode(r.leaf_hash).decode()}).json()
        assert by_hash["logIndex"] == r.log_index
        assert http.get("/api/v1/entries", params={"leafHash": r.leaf_hash.hex()}).json()["logIndex"] == r.log_index
        assert entry["submission"]["dsseEnvelope"]["payloadType"] == "application/vnd.in-toto+json"
    # Consistency between every earlier receipt's checkpoint and the latest.
    for r in receipts[::50]:
        old = verify_receipt(r, v)
        if old.size < cp.size:
            verify_consistency(
                old.size, cp.size, client.consistency_proof(old.size, cp.size), old.root_hash, cp.root_hash
            )
    # The tiles recompute the same root and the entry bundles hash to the level-0 tiles.
    tiles = {}
    for addr in proof_tiles(300):
        resp = http.get("/" + addr.path())
        assert resp.status_code == 200
        want = "immutable" if addr.full else "max-age=86400"
        assert want in resp.headers["cache-control"]
        tiles[(addr.level, addr.index)] = TileLevels(resp.content)
    assert TileSource(300, tiles).root() == cp.root_hash
    bundle = parse_entry_bundle(http.get("/tile/entries/000").content)
    assert [leaf_hash(b) for b in bundle] == [r.leaf_hash for r in receipts[:256]]
    assert "immutable" in http.get("/tile/entries/000").headers["cache-control"]
    assert len(parse_entry_bundle(http.get("/tile/entries/001.p/44").content)) == 44


def test_tile_errors(http: httpx.Client) -> None:
    problem(http.get("/tile/0/000"), 404, "tile-not-found")
    problem(http.get("/tile/0/5"), 404, "invalid-tile-path")
    problem(http.get("/tile/entries/000.p/300"), 404, "invalid-tile-path")


@pytest.mark.parametrize(
    ("path", "status", "slug"),
    [
        ("/api/v1/proofs/inclusion?index=0&treeSize=5", 400, "tree-size-too-large"),
        ("/api/v1/proofs/inclusion?index=5&treeSize=5", 400, "index-out-of-range"),
        ("/api/v1/proofs/inclusion?index=-1&treeSize=5", 400, "invalid-request"),
        ("/api/v1/proofs/inclusion?index=abc&treeSize=5", 400, "invalid-request"),
        ("/api/v1/proofs/consistency?from=3&to=2", 400, "invalid-range"),
        ("/api/v1/proofs/consistency?from=0&to=2", 400, "invalid-request"),
        ("/api/v1/proofs/consistency?from=1&to=99", 400, "tree-size-too-large"),
        ("/api/v1/entries/7", 404, "entry-not-found"),
        ("/api/v1/entries/-7", 400, "invalid-index"),
        ("/api/v1/entries?leafHash=zz", 400, "invalid-leaf-hash"),
        ("/api/v1/nothing", 404, "not-found"),
    ],
)
def test_bad_reads_are_problems(server: ServerProcess, http: httpx.Client, path: str, status: int, slug: str) -> None:
    http.post("/api/v1/entries", json=demo_submission(Ed25519PrivateKey.generate(), 0, server.platform))
    problem(http.get(path), status, slug)
    if slug == "not-found":  # the router's own answer names the path and where the API is described
        assert http.get(path).json()["detail"] == f"no such path: {path} (the API is under /api/v1, described at /docs)"
    if slug == "entry-not-found":
        assert "the log holds entries #0 to #" in http.get(path).json()["detail"]


def _signed() -> dict:
    return demo_submission(Ed25519PrivateKey.generate(), 1)


def _mutate(f):  # type: ignore[no-untyped-def]
    sub = _signed()
    f(sub)
    return sub


BAD_SUBMISSIONS = {
    "not-json": (b"{not json", 400, "invalid-json"),
    "array": (b"[]", 400, "invalid-submission"),
    "unknown-member": (_mutate(lambda s: s.update(extra=1)), 400, "invalid-submission"),
    "api-version": (_mutate(lambda s: s.update(apiVersion="v0")), 400, "unsupported-api-version"),
    "no-envelope": (_mutate(lambda s: s.pop("dsseEnvelope")), 400, "invalid-submission"),
    "bad-base64": (_mutate(lambda s: s["dsseEnvelope"].update(payload="###")), 400, "invalid-envelope"),
    "unpadded-base64": (_mutate(lambda s: s["dsseEnvelope"].update(payload="YQ")), 400, "invalid-envelope"),
    "no-signatures": (_mutate(lambda s: s["dsseEnvelope"].update(signatures=[])), 400, "invalid-envelope"),
    "tampered-payload": (
        _mutate(lambda s: s["dsseEnvelope"].update(payload=base64.b64encode(b'{"x":1}').decode())),
        400,
        "signature-invalid",
    ),
    "wrong-key": (
        _mutate(lambda s: s["verificationMaterial"].update(publicKeys=_signed()["verificationMaterial"]["publicKeys"])),
        400,
        "signature-invalid",
    ),
    "bad-key": (
        _mutate(lambda s: s["verificationMaterial"].update(publicKeys=[{"spki": "AAAA"}])),
        400,
        "invalid-public-key",
    ),
    "no-keys": (_mutate(lambda s: s.update(verificationMaterial={"publicKeys": []})), 400, "invalid-submission"),
    "lone-surrogate": (
        b'{"dsseEnvelope":{"payloadType":"\\ud800","payload":"YQ==","signatures":[{"sig":"YQ=="}]},'
        b'"verificationMaterial":{"publicKeys":[{"spki":"AAAA"}]}}',
        400,
        "invalid-json",
    ),
    "tee-no-quote": (_mutate(lambda s: s.update(tee={"type": "intel-tdx"})), 400, "invalid-tee"),
    "tee-wrong-type": (_mutate(lambda s: s.update(tee={"type": "sev-snp", "quote": "AAAA"})), 400, "invalid-tee"),
    "tee-missing": (_signed(), 422, "tee-required"),
    "tee-bad-quote": (
        _mutate(lambda s: s.update(tee={"type": "intel-tdx", "quote": "AAAA"})),
        422,
        "tdx-quote-malformed",
    ),
    "too-large": (b'{"x":"' + b"a" * (2 << 20) + b'"}', 413, "body-too-large"),
    "deep-json": (b"[" * 400_000 + b"]" * 400_000, 400, "invalid-json"),
}


@pytest.mark.parametrize("case", sorted(BAD_SUBMISSIONS))
def test_bad_submissions_are_problems_and_write_nothing(server: ServerProcess, http: httpx.Client, case: str) -> None:
    body, status, slug = BAD_SUBMISSIONS[case]
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    problem(http.post("/api/v1/entries", content=data, headers={"content-type": "application/json"}), status, slug)
    assert http.get("/api/v1/log").json()["treeSize"] == 0


def test_empty_log_serves_signed_empty_checkpoint(server: ServerProcess, http: httpx.Client) -> None:
    cp = open_checkpoint(http.get("/checkpoint").content, Verifier.from_vkey(server.vkey))
    assert cp.size == 0
    info = http.get("/api/v1/log").json()
    assert info["treeSize"] == 0 and info["origin"] == cp.origin


def test_receipt_tamper_detected(server: ServerProcess, http: httpx.Client) -> None:
    body = http.post("/api/v1/entries", json=demo_submission(Ed25519PrivateKey.generate(), 1, server.platform)).json()
    verify_receipt(body, server.vkey)
    r = Receipt.from_json(body)
    forged = Receipt(
        r.entry_id, r.log_index, LeafHash(leaf_hash(b"other")), b"other", r.tree_size, r.hashes, r.checkpoint
    )
    with pytest.raises(FormatError):
        verify_receipt(forged, server.vkey)
    other = http.post("/api/v1/entries", json=demo_submission(Ed25519PrivateKey.generate(), 2, server.platform)).json()
    swapped = Receipt.from_json(
        {**body, "leaf": other["leaf"], "leafHash": other["leafHash"], "entryId": other["entryId"]}
    )
    with pytest.raises(VerificationError):
        verify_receipt(swapped, server.vkey)
    verify_inclusion(
        r.leaf_hash,
        r.log_index,
        r.tree_size,
        list(r.hashes),
        open_checkpoint(r.checkpoint, Verifier.from_vkey(server.vkey)).root_hash,
    )


def test_attested_entry_records_the_verdict_and_evidence_replays(server: ServerProcess, http: httpx.Client) -> None:
    from atlas_log.tdx import collateral_from_dir  # noqa: F401  (the CLI replays the same folder layout)

    body = http.post("/api/v1/entries", json=demo_submission(Ed25519PrivateKey.generate(), 5, server.platform)).json()
    leaf = json.loads(base64.b64decode(body["leaf"]))
    tee = leaf["body"]["tee"]
    assert tee["tcbStatus"] == "UpToDate" and tee["simulated"] is True and tee["binding"] == "atlas-log/tdx-bind/v1"
    assert set(tee["collateral"]) >= {"tcb_info", "qe_identity", "pck_crl", "root_ca_crl", "set"}
    info = http.get("/api/v1/log").json()["attestation"]
    assert info["mode"] == "simulated" and "SIMULATED" in info["warning"]


def test_quote_bound_to_another_entry_is_rejected(server: ServerProcess, http: httpx.Client) -> None:
    platform = server.platform
    key = Ed25519PrivateKey.generate()
    a, b = demo_submission(key, 1, platform), demo_submission(key, 2, platform)
    a["tee"] = b["tee"]  # a valid quote, but bound to another payload
    problem(http.post("/api/v1/entries", json=a), 422, "tdx-binding-mismatch")
    debug = demo_submission(key, 3)
    from atlas_log.submission import tdx_tee

    debug["tee"] = tdx_tee(platform.quote(bytes(64), td_attributes=bytes.fromhex("0100001000000000")))
    problem(http.post("/api/v1/entries", json=debug), 422, "tdx-td-debug")
    unknown_nonce = demo_submission(key, 4, platform, nonce=b"\x01" * 32)
    problem(http.post("/api/v1/entries", json=unknown_nonce), 422, "tdx-nonce-unknown")
    assert http.get("/api/v1/log").json()["treeSize"] == 0


def test_checkpoint_root_as_nonce_is_accepted(server: ServerProcess, http: httpx.Client) -> None:
    key = Ed25519PrivateKey.generate()
    first = http.post("/api/v1/entries", json=demo_submission(key, 1, server.platform))
    root = open_checkpoint(first.json()["checkpoint"].encode(), Verifier.from_vkey(server.vkey)).root_hash
    r = http.post("/api/v1/entries", json=demo_submission(key, 2, server.platform, nonce=root))
    assert r.status_code == 201, r.text
    tee = json.loads(base64.b64decode(r.json()["leaf"]))["body"]["tee"]
    assert tee["nonce"] == root.hex() and tee["nonceCheckpointSize"] == 1


def test_evidence_replays_offline_with_the_cli(
    server: ServerProcess, http: httpx.Client, tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    from pathlib import Path

    from atlas_log import cli

    body = http.post("/api/v1/entries", json=demo_submission(Ed25519PrivateKey.generate(), 9, server.platform)).json()
    out = Path(str(tmp_path)) / "evidence"
    assert cli.main(["--server", server.url, "evidence", str(body["logIndex"]), "--out", str(out)]) == 0
    # The folder re-verifies offline as printed: its time and quote are read from what evidence wrote.
    replay = capsys.readouterr().out.split("re-verify it offline: atlas-log ", 1)[1].split()
    assert replay[:3] == ["tdx", "verify", str(out)]
    assert cli.main([*replay, "--json"]) == 0
    verdict = json.loads(capsys.readouterr().out)
    recorded = json.loads((out / "verdict.json").read_text())
    assert verdict["accept"] and verdict["tcb_status"] == recorded["tcbStatus"]
    assert verdict["td"]["report_data"] == recorded["reportData"]
    assert {k: v for k, v in verdict["collateral_digests"].items()} == {
        k: v for k, v in recorded["collateral"].items() if k != "set"
    }
    problem(http.get("/api/v1/entries/99/evidence"), 404, "entry-not-found")


def test_key_mode_one_quote_attests_a_pipeline_key(server: ServerProcess, http: httpx.Client) -> None:
    from atlas_log.dsse import sign_envelope
    from atlas_log.submission import INTOTO_PAYLOAD_TYPE, build_submission, intoto_statement, spki_der, tdx_tee
    from atlas_log.tdx.binding import KEY_TAG, key_report_data

    key = Ed25519PrivateKey.generate()
    spki = spki_der(key)
    import hashlib

    statement = intoto_statement(
        [("spki", hashlib.sha256(spki).hexdigest())], "https://atlas-log.dev/tee/key-attestation/v1", {}
    )
    attest = build_submission(
        sign_envelope(INTOTO_PAYLOAD_TYPE, statement, key),
        [spki],
        tee=tdx_tee(server.platform.quote(key_report_data(spki)), binding=KEY_TAG),
    )
    r = http.post("/api/v1/entries", json=attest)
    assert r.status_code == 201, r.text
    idx = r.json()["logIndex"]
    later = demo_submission(key, 7)
    later["tee"] = {"type": "intel-tdx", "binding": KEY_TAG, "keyAttestationEntry": idx}
    r2 = http.post("/api/v1/entries", json=later)
    assert r2.status_code == 201, r2.text
    tee = json.loads(base64.b64decode(r2.json()["leaf"]))["body"]["tee"]
    assert tee["keyAttestationEntry"] == idx and tee["tcbStatus"] == "UpToDate"
    stranger = demo_submission(Ed25519PrivateKey.generate(), 8)
    stranger["tee"] = {"type": "intel-tdx", "binding": KEY_TAG, "keyAttestationEntry": idx}
    problem(http.post("/api/v1/entries", json=stranger), 422, "tdx-key-not-attested")
    # A payload-mode quote does not attest a key.
    wrong = build_submission(
        sign_envelope(INTOTO_PAYLOAD_TYPE, statement, key),
        [spki],
        tee=tdx_tee(server.platform.quote(key_report_data(spki))),
    )
    problem(http.post("/api/v1/entries", json=wrong), 422, "tdx-binding-mismatch")


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/search?name=%00",
        "/api/v1/search?name=model%00.bin",
        "/api/v1/search?predicateType=%00",
        "/api/v1/artifacts/%00:aa/history",
        "/api/v1/artifacts/sha%00:aa/lineage",
        "/api/v1/artifacts/x%00y:aa/history",
    ],
)
def test_a_nul_in_a_query_is_a_4xx_not_a_500(server: ServerProcess, http: httpx.Client, path: str) -> None:
    """No input may cause a 5xx: U+0000 (which PostgreSQL text cannot hold) in a search filter or an artifact's
    algorithm name reaches the database and fails there as an internal error (and the connection is reset)."""
    r = httpx.get(server.url + path, timeout=30)
    assert r.status_code < 500, (r.status_code, r.text)
    assert r.status_code == 400 and r.headers["content-type"].startswith("application/problem+json"), r.text


@pytest.mark.parametrize(
    "material",
    [
        {"certificate": {"rawBytes": 5}},
        {"certificate": {"rawBytes": []}},
        {"x509CertificateChain": {"certificates": [{"rawBytes": None}]}},
    ],
)
def test_a_bundle_certificate_that_is_not_a_string_is_a_400(
    server: ServerProcess, http: httpx.Client, material: dict[str, Any]
) -> None:
    """No input may cause a 5xx: a Sigstore bundle whose certificate rawBytes is not a string reaches
    b64decode (which raises TypeError/AttributeError, not FormatError) and the request fails as a 500."""
    from atlas_log.testing.demo import demo_submission

    sub = demo_submission(Ed25519PrivateKey.generate(), 1, server.platform)
    bundle = {
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "dsseEnvelope": sub["dsseEnvelope"],
        "verificationMaterial": material,
    }
    problem(http.post("/api/v1/entries", json={"sigstoreBundle": bundle, "tee": sub["tee"]}), 400, "invalid-envelope")


def test_a_leaf_over_the_limit_through_its_back_links_is_a_4xx(server: ServerProcess, http: httpx.Client) -> None:
    """No input may cause a 5xx. Admission bounds the leaf by len(body) + sum(len(digest) + 24) per back-link,
    counting a digest's characters, not its UTF-8 bytes. Digest algorithm names are free text (up to 1024 bytes
    of UTF-8 each): 40 subjects named by a 300-character "€…" algorithm pass the bound, then the sequencer
    cannot encode the leaf (it is far over 65,535 bytes) and the submission fails as a 500."""
    import json

    from atlas_log.submission import signed_submission

    algorithm = "\u20ac" * 300
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": f"part-{i}", "digest": {algorithm: f"{i:064x}"}} for i in range(40)],
        "predicateType": "https://atlas-log.dev/test/v1",
        "predicate": {},
    }
    sub = signed_submission(Ed25519PrivateKey.generate(), json.dumps(statement).encode(), server.platform)
    # Refused before any bound is needed: an algorithm name is letters, digits, '.', '+', '-' or '_'.
    problem(http.post("/api/v1/entries", json=sub), 400, "invalid-statement")
