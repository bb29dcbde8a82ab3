"""Confidential entries over HTTP against a real server: hidden values reach no public answer, tile or log line;
disclosures are served only to the tenant and its live grants (every read recorded); a swapped disclosure is
refused; erasure destroys the data key, keeps every proof valid, and survives a restart and a backup restore."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from atlas_log.checkpoint import open_checkpoint
from atlas_log.client import LogClient
from atlas_log.cosignature import CosignatureSigner
from atlas_log.disclosure import Disclosure, parse_disclosure, redact, reveal
from atlas_log.errors import LogAPIError, VerificationError
from atlas_log.intoto import SLSA_V1
from atlas_log.note import Verifier
from atlas_log.replay import Replay
from atlas_log.reverify import Trust
from atlas_log.submission import signed_submission
from tests.conftest import ServerProcess
from tests.pgcluster import tool_for
from tests.proxy import TamperingProxy

ADMIN = "atladm_confidential-admin-0123456789"
CANARY = "s3://vendor-secret/canary-7f3a9c"
LR = 0.000123456789


def _statement(n: int) -> dict[str, Any]:
    return {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": f"model-{n}", "digest": {"sha256": hashlib.sha256(b"m%d" % n).hexdigest()}}],
        "predicateType": SLSA_V1,
        "predicate": {
            "buildDefinition": {
                "buildType": "https://atlas-log.dev/ml/training/v1",
                "externalParameters": {"dataset": CANARY, "hyperparameters": {"lr": LR}},
                "resolvedDependencies": [
                    {"name": "train", "uri": CANARY + "/train", "digest": {"sha256": hashlib.sha256(b"d").hexdigest()}}
                ],
            },
            "runDetails": {"builder": {"id": "https://example.com/trainer"}},
        },
    }


SECRET_DATA = hashlib.sha256(b"d").hexdigest()  # the dataset digest every _statement names
DATASET_DIGEST = "predicate.buildDefinition.resolvedDependencies[0].digest"
HIDDEN = [
    "predicate.buildDefinition.externalParameters.dataset",
    "predicate.buildDefinition.externalParameters.hyperparameters",
    "predicate.buildDefinition.resolvedDependencies[*].uri",
]


def _confidential(key: Ed25519PrivateKey, n: int, platform: Any) -> tuple[dict[str, Any], tuple[Disclosure, ...]]:
    redacted, disclosures = redact(_statement(n), HIDDEN)
    payload = json.dumps(redacted, separators=(",", ":")).encode()
    return signed_submission(key, payload, platform, disclosures=disclosures), disclosures


@pytest.fixture
def log(db_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    env = {"ATLAS_ADMIN_TOKEN_SHA256": hashlib.sha256(ADMIN.encode()).hexdigest()}
    server = ServerProcess(db_url, tmp_path / "data", env=env)
    yield server
    server.stop()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _tenant(http: httpx.Client, name: str) -> str:
    admin = _bearer(ADMIN)
    assert http.put(f"/admin/v1/tenants/{name}", json={"ratePerSecond": 100, "burst": 100}, headers=admin).is_success
    token = http.post(f"/admin/v1/tenants/{name}/tokens", json={}, headers=admin).json()["token"]
    return str(token)


def _bundle(http: httpx.Client, index: int) -> str:
    """The entry bundle holding ``index`` (C2SP tlog-tiles), as text."""
    size = http.get("/api/v1/log").json()["treeSize"]
    block, width = index // 256, min(256, size - index // 256 * 256)
    path = f"/tile/entries/{block:03d}" + ("" if width == 256 else f".p/{width}")
    r = http.get(path)
    assert r.status_code == 200, path
    return r.content.decode("utf-8", "replace")


def _problem(r: httpx.Response, status: int, slug: str) -> None:
    assert r.status_code == status, r.text
    assert r.json()["type"].endswith("/" + slug), r.text


def test_hidden_values_stay_private_and_grants_are_enforced(log: ServerProcess) -> None:
    key = Ed25519PrivateKey.generate()
    with httpx.Client(base_url=log.url, timeout=30) as http:
        vendor, other = _tenant(http, "vendor"), _tenant(http, "other")
        sub, _disclosures = _confidential(key, 0, log.platform)
        r = http.post("/api/v1/entries", json=sub, headers=_bearer(vendor))
        assert r.status_code == 201, r.text
        index = r.json()["logIndex"]
        # Anyone verifies the entry: it is in the log with its quote, and its statement is the redacted one.
        public = [
            http.get(f"/api/v1/entries/{index}").text,
            http.get("/api/v1/submissions", params={"start": index, "count": 1}).text,
            http.get(f"/api/v1/artifacts/sha256:{hashlib.sha256(b'm0').hexdigest()}/history").text,
            http.get("/api/v1/search", params={"name": "model-0"}).text,
            _bundle(http, index),
            http.get("/metrics").text,
        ]
        for text in public:
            assert CANARY not in text and str(LR) not in text
        # The tenant reads its disclosures back, and they reveal the values the signed statement commits to.
        got = http.get(f"/api/v1/entries/{index}/disclosures", headers=_bearer(vendor))
        assert got.status_code == 200, got.text
        entry = http.get(f"/api/v1/entries/{index}").json()
        payload = base64.b64decode(entry["submission"]["dsseEnvelope"]["payload"])
        revealed = reveal(json.loads(payload), [parse_disclosure(d) for d in got.json()["disclosures"]])
        assert revealed.statement == _statement(0)
        # Another tenant, an anonymous reader, a grant: only the tenant's own and its live grants read.
        _problem(http.get(f"/api/v1/entries/{index}/disclosures", headers=_bearer(other)), 403, "not-granted")
        _problem(http.get(f"/api/v1/entries/{index}/disclosures"), 401, "unauthorized")
        admin = _bearer(ADMIN)
        grant = http.post("/admin/v1/tenants/vendor/grants", json={"holder": "EU AI Office"}, headers=admin).json()
        assert http.get(f"/api/v1/entries/{index}/disclosures", headers=_bearer(grant["token"])).status_code == 200
        # A grant reads, but does not erase, and does not see the tenant's record of reads.
        _problem(
            http.request(
                "DELETE", f"/api/v1/entries/{index}/disclosures", json={"reason": "x"}, headers=_bearer(grant["token"])
            ),
            403,
            "not-granted",
        )
        _problem(http.get("/api/v1/disclosure-reads", headers=_bearer(grant["token"])), 403, "not-granted")
        # Nor does it submit; the answer says which token does.
        refused = http.post("/api/v1/entries", json=sub, headers=_bearer(grant["token"]))
        _problem(refused, 403, "insufficient-scope")
        assert "the tenant's submit token submits" in refused.json()["detail"]
        reads = http.get("/api/v1/disclosure-reads", headers=_bearer(vendor)).json()["reads"]
        assert [r["action"] for r in reads] == ["read", "read"]
        assert "EU AI Office" in reads[0]["reader"] and reads[0]["logIndex"] == index
        # Revoked and expired grants are refused.
        assert http.delete(f"/admin/v1/tokens/{grant['id']}", headers=admin).status_code == 204
        time.sleep(5.5)  # token lookups are cached for 5 s in each process
        _problem(
            http.get(f"/api/v1/entries/{index}/disclosures", headers=_bearer(grant["token"])), 403, "token-revoked"
        )
        short = http.post(
            "/admin/v1/tenants/vendor/grants", json={"holder": "auditor", "expiresInDays": 1 / 86400}, headers=admin
        ).json()
        time.sleep(1.5)
        _problem(
            http.get(f"/api/v1/entries/{index}/disclosures", headers=_bearer(short["token"])), 403, "token-expired"
        )
    # No hidden value in the server's own log lines either.
    assert CANARY not in log.log_path.read_text()
    # A monitor replaying the log re-verifies the confidential entry from public data (signature, quote,
    # binding, the redacted statement) and finds nothing wrong.
    replay = Replay(log.url, Trust(tdx_roots=(log.platform.root_fingerprint,)), workers=1)
    outcome = replay.run(open_checkpoint(httpx.get(log.url + "/checkpoint").content, Verifier.from_vkey(log.vkey)))
    assert outcome.problems == [] and outcome.entries >= 1


def test_a_disclosure_swapped_for_another_value_is_refused(log: ServerProcess) -> None:
    key = Ed25519PrivateKey.generate()
    sub, _disclosures = _confidential(key, 1, log.platform)
    forged = Disclosure.make("dataset", CANARY + "/forged")
    swapped = {**sub, "disclosures": [forged.encoded, *sub["disclosures"][1:]]}
    with httpx.Client(base_url=log.url, timeout=30) as http:
        r = http.post("/api/v1/entries", json=swapped)
        _problem(r, 400, "invalid-disclosure")
        assert "not committed" in r.json()["detail"]
        # The refusal names the disclosure by its digest, never by the value it carries.
        assert CANARY not in r.text
        _problem(http.post("/api/v1/entries", json={**sub, "disclosures": ["%%%"]}), 400, "invalid-disclosure")
        # Nothing was logged by either, and no hidden value reached the server's log lines.
        assert http.get("/api/v1/log").json()["treeSize"] == 0
    assert CANARY not in log.log_path.read_text()


def test_erasure_keeps_every_proof_and_survives_a_restart_and_a_restore(db_url: str, tmp_path: Path) -> None:
    env = {"ATLAS_ADMIN_TOKEN_SHA256": hashlib.sha256(ADMIN.encode()).hexdigest()}
    data = tmp_path / "data"
    server = ServerProcess(db_url, data, env=env)
    key = Ed25519PrivateKey.generate()
    dump = tmp_path / "before-erasure.dump"
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            vendor = _tenant(http, "vendor")
            sub, _ = _confidential(key, 2, server.platform)
            receipt = http.post("/api/v1/entries", json=sub, headers=_bearer(vendor)).json()
            index = receipt["logIndex"]
            assert http.get(f"/api/v1/entries/{index}/disclosures", headers=_bearer(vendor)).status_code == 200
            # A backup, taken before the erasure (with the tools of the server's own version).
            subprocess.run([tool_for(db_url, "pg_dump"), "-Fc", "-f", str(dump), db_url], check=True)
            _problem(
                http.request("DELETE", f"/api/v1/entries/{index}/disclosures", json={}, headers=_bearer(vendor)),
                400,
                "invalid-request",
            )
            r = http.request(
                "DELETE",
                f"/api/v1/entries/{index}/disclosures",
                json={"reason": "GDPR Art. 17 request 2026-118"},
                headers=_bearer(vendor),
            )
            assert r.status_code == 200, r.text
            _problem(
                http.get(f"/api/v1/entries/{index}/disclosures", headers=_bearer(vendor)), 410, "disclosures-erased"
            )
            _problem(
                http.get(f"/api/v1/entries/{index}/disclosures", headers=_bearer(ADMIN)), 410, "disclosures-erased"
            )
            leaf = http.get(f"/api/v1/entries/{index}").json()["leaf"]
            # The history shows the entry, marked erased.
            history = http.get(f"/api/v1/artifacts/sha256:{hashlib.sha256(b'm2').hexdigest()}/history").json()
            assert history["entries"][0]["logIndex"] == index and "disclosuresErased" in history["entries"][0]
            reads = http.get("/api/v1/disclosure-reads", headers=_bearer(vendor)).json()["reads"]
            assert reads[0]["action"] == "erase"
        server.stop()
        # The database restored from the backup holds the entry's wrapped key again: the server erases it at start.
        subprocess.run([tool_for(db_url, "pg_restore"), "--clean", "--if-exists", "-d", db_url, str(dump)], check=True)
        server = ServerProcess(db_url, data, env=env)
        with httpx.Client(base_url=server.url, timeout=30) as http:
            _problem(
                http.get(f"/api/v1/entries/{index}/disclosures", headers=_bearer(ADMIN)), 410, "disclosures-erased"
            )
            # The entry, its leaf and its proofs are what they were.
            assert http.get(f"/api/v1/entries/{index}").json()["leaf"] == leaf
            size = http.get("/api/v1/log").json()["treeSize"]
            proof = http.get("/api/v1/proofs/inclusion", params={"index": index, "treeSize": size})
            assert proof.status_code == 200, proof.text
    finally:
        server.stop()


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "atlas_log.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_the_command_line_submits_discloses_and_verifies_offline(log: ServerProcess, tmp_path: Path) -> None:
    """A pipeline hides fields with ``submit --confidential``; a grant holder fetches them with ``disclose``
    and anyone holding the file re-verifies it offline; a changed value fails."""
    key = Ed25519PrivateKey.generate()
    key_file = tmp_path / "key.pem"
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    statement = tmp_path / "statement.json"
    statement.write_text(json.dumps(_statement(3)))
    with httpx.Client(base_url=log.url, timeout=30) as http:
        token_file = tmp_path / "vendor.token"
        token_file.write_text(_tenant(http, "vendor"))
        grant = http.post("/admin/v1/tenants/vendor/grants", json={"holder": "regulator"}, headers=_bearer(ADMIN))
        grant_file = tmp_path / "grant.token"
        grant_file.write_text(grant.json()["token"])
    common = ["--server", log.url, "--vkey", log.vkey]
    r = _cli(
        *common,
        "submit",
        "--statement",
        str(statement),
        "--key",
        str(key_file),
        "--simulated-platform",
        str(log.data_dir / "simulated-tdx"),
        "--token-file",
        str(token_file),
        *[a for p in [*HIDDEN, DATASET_DIGEST] for a in ("--confidential", p)],
    )
    assert r.returncode == 0, r.stderr
    index = int(r.stdout.split("index ")[1].split()[0])
    entry = httpx.get(f"{log.url}/api/v1/entries/{index}").text
    assert CANARY not in entry and SECRET_DATA not in entry
    shown = _cli(*common, "get", str(index))
    assert shown.returncode == 0 and re.search(r"it hides \d+ values", " ".join(shown.stdout.split())), shown.stdout
    # The hidden dataset is found by its real digest with a grant, and only with one.
    r = _cli(*common, "history", f"sha256:{SECRET_DATA}", "--hidden", "--token-file", str(grant_file), "--json")
    assert r.returncode == 0, r.stderr
    assert "the entries naming it openly are found without --hidden" in " ".join(r.stderr.split()), r.stderr
    assert [e["logIndex"] for e in json.loads(r.stdout)["entries"]] == [index]
    r = _cli(*common, "history", f"sha256:{SECRET_DATA}", "--hidden", env={"ATLAS_LOG_TOKEN": ""})
    assert r.returncode != 0 and "--token-file" in r.stderr
    out = tmp_path / "disclosed.json"
    r = _cli(*common, "disclose", str(index), "--out", str(out), "--token-file", str(grant_file))
    assert r.returncode == 0, r.stderr
    assert CANARY in r.stdout and str(LR) in r.stdout
    # A monitor holding the grant says, in words, what became of the confidential entries' disclosures.
    root = log.platform.root_fingerprint
    r = _cli(*common, "monitor", "--once", "--replay", "--tdx-root", root, "--token-file", str(grant_file))
    assert r.returncode == 0 and "confidential entries' disclosures: 1 checked" in r.stdout, r.stdout + r.stderr
    r = _cli("verify-disclosure", str(out), "--vkey", log.vkey)
    assert r.returncode == 0, r.stderr
    assert f"$.predicate.buildDefinition.externalParameters.dataset = {json.dumps(CANARY)}" in r.stdout
    # Under a witness policy the file's checkpoint needs the witnesses' cosignatures, as a receipt's does.
    witness = CosignatureSigner("witness.example", Ed25519PrivateKey.generate()).verifier
    for policy in (["--witness", witness.vkey], ["--witness", witness.vkey, "--quorum", "1"]):
        r = _cli("verify-disclosure", str(out), "--vkey", log.vkey, *policy)
        assert r.returncode == 1 and "cosignature" in r.stderr and CANARY not in r.stdout, r.stdout + r.stderr
    # A file (or a log) leaving a disclosure out still verifies what it shows, and says that more stays hidden.
    record = json.loads(out.read_text())
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps({**record, "disclosures": record["disclosures"][1:]}))
    r = _cli("verify-disclosure", str(partial), "--vkey", log.vkey)
    assert r.returncode == 0 and "1 value the statement hides is not disclosed here" in r.stderr, r.stderr
    r = _cli("verify-disclosure", str(partial), "--vkey", log.vkey, "--json")
    assert json.loads(r.stdout)["undisclosed"] == 1
    r = _cli("verify-disclosure", str(out), "--vkey", log.vkey, "--json")
    assert json.loads(r.stdout)["undisclosed"] == 0
    # The file with a value changed (its disclosure re-encoded around another value) fails, with one line.
    swapped = Disclosure.make("dataset", "s3://elsewhere")
    record["disclosures"] = [
        swapped.encoded if parse_disclosure(d).name == "dataset" else d for d in record["disclosures"]
    ]
    out.write_text(json.dumps(record))
    r = _cli("verify-disclosure", str(out), "--vkey", log.vkey)
    assert r.returncode == 1 and "not committed" in r.stderr and "Traceback" not in r.stderr
    # A receipt (or any other JSON) given instead is named as such, with the command that checks it.
    receipt = tmp_path / "entry.receipt.json"
    receipt.write_text(json.dumps({"checkpoint": record["checkpoint"], "inclusionProof": {"hashes": []}}))
    r = _cli("verify-disclosure", str(receipt), "--vkey", log.vkey)
    assert r.returncode != 0 and "is a receipt, not a disclosure file: check it with atlas-log verify" in r.stderr
    receipt.write_text("{}")
    r = _cli("verify-disclosure", str(receipt), "--vkey", log.vkey)
    assert r.returncode != 0 and "not a disclosure file: make one with atlas-log disclose" in r.stderr
    # Without a token, disclose says what to pass.
    r = _cli(*common, "disclose", str(index), "--out", str(out), env={"ATLAS_LOG_TOKEN": ""})
    assert r.returncode != 0 and "--token-file" in r.stderr


def test_a_lying_log_cannot_pass_off_another_value(log: ServerProcess) -> None:
    """The client checks what the log serves: a disclosure swapped in transit, or another statement, fails."""
    key = Ed25519PrivateKey.generate()
    with httpx.Client(base_url=log.url, timeout=30) as http:
        vendor = _tenant(http, "vendor")
        sub, _ = _confidential(key, 4, log.platform)
        index = http.post("/api/v1/entries", json=sub, headers=_bearer(vendor)).json()["logIndex"]
    proxy = TamperingProxy(log.url)
    try:
        with LogClient(proxy.url, log.vkey, token=vendor) as client:
            assert client.disclosures(index).revealed.statement == _statement(4)
            forged = Disclosure.make("dataset", "s3://not-the-real-one")
            proxy.on_get = lambda url, a: (
                {**a, "disclosures": [forged.encoded, *a["disclosures"][1:]]}
                if url.path.endswith("/disclosures")
                else a
            )
            with pytest.raises(VerificationError, match="not committed"):
                client.disclosures(index)
            other = json.dumps(_statement(4)).encode()  # the unredacted statement, never signed or logged

            def swap_statement(url: httpx.URL, a: Any) -> Any:
                if url.path.endswith(f"/entries/{index}"):
                    env = a["submission"]["dsseEnvelope"]
                    return {
                        **a,
                        "submission": {
                            **a["submission"],
                            "dsseEnvelope": {**env, "payload": base64.b64encode(other).decode()},
                        },
                    }
                return a

            proxy.on_get = swap_statement
            with pytest.raises(VerificationError, match="payloadHash"):
                client.disclosures(index)
        # A monitor holding a grant checks every disclosure it may read while it replays: the honest log
        # passes, a swapped value is reported against its entry.
        checkpoint = open_checkpoint(httpx.get(log.url + "/checkpoint").content, Verifier.from_vkey(log.vkey))
        trust = Trust(tdx_roots=(log.platform.root_fingerprint,))
        proxy.on_get = lambda url, a: a
        honest = Replay(proxy.url, trust, workers=1, token=vendor).run(checkpoint)
        assert honest.problems == [] and honest.disclosures == {"checked": 1}
        proxy.on_get = lambda url, a: (
            {**a, "disclosures": [forged.encoded, *a["disclosures"][1:]]} if url.path.endswith("/disclosures") else a
        )
        lied = Replay(proxy.url, trust, workers=1, token=vendor).run(checkpoint)
        assert [i for i, _ in lied.bad_disclosures] == [index] and lied.bad_entries == []
        assert "not committed" in lied.problems[0]
        # Without a grant the replay reads no disclosure; with another tenant's, it is told none is its to read.
        assert Replay(proxy.url, trust, workers=1).run(checkpoint).disclosures == {}
        with httpx.Client(base_url=log.url, timeout=30) as http:
            other = _tenant(http, "other")
        assert Replay(proxy.url, trust, workers=1, token=other).run(checkpoint).disclosures == {"not granted": 1}
    finally:
        proxy.close()


def _hidden_statement(n: int) -> dict[str, Any]:
    """A training step with a public base model beside its dataset (whose digest the tests hide)."""
    st = _statement(n)
    st["predicate"]["buildDefinition"]["resolvedDependencies"].append(
        {"name": "base", "uri": "hf://base", "digest": {"sha256": hashlib.sha256(b"base").hexdigest()}}
    )
    return st


def test_hidden_digests_link_for_grant_holders_only(db_url: str, tmp_path: Path) -> None:
    """A pipeline hides its dataset's digest (and one model's): the public index holds only blinded keys, the
    real digests reach no public answer, a submitter cannot file under another tenant's blinded key, and the
    tenant's grants find the entries by real digest, with complete proofs, the hidden digest revealed."""
    env = {"ATLAS_ADMIN_TOKEN_SHA256": hashlib.sha256(ADMIN.encode()).hexdigest(), "ATLAS_MAP_INTERVAL_S": "0.3"}
    server = ServerProcess(db_url, tmp_path / "data", env=env)
    key = Ed25519PrivateKey.generate()
    dataset = DATASET_DIGEST
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            vendor, other = _tenant(http, "vendor"), _tenant(http, "other")
            admin = _bearer(ADMIN)
            whole = http.post("/admin/v1/tenants/vendor/grants", json={"holder": "regulator"}, headers=admin).json()
            scoped = http.post(
                "/admin/v1/tenants/vendor/grants",
                json={"holder": "dataset auditor", "artifacts": [f"SHA-256:{SECRET_DATA.upper()}"]},
                headers=admin,
            ).json()
            assert scoped["artifacts"] == [f"sha256:{SECRET_DATA}"]
            _problem(http.get("/api/v1/blinding-key"), 401, "unauthorized")
            vendor_key = base64.b64decode(http.get("/api/v1/blinding-key", headers=_bearer(vendor)).json()["key"])
            other_key = base64.b64decode(http.get("/api/v1/blinding-key", headers=_bearer(other)).json()["key"])
            assert vendor_key != other_key
            # A scoped grant is told its artifacts' blinded keys, never the key that would test any guess.
            told = http.get("/api/v1/blinding-key", headers=_bearer(scoped["token"])).json()
            assert "key" not in told and set(told["hidden"]) == {f"sha256:{SECRET_DATA}"}

            def submit(statement: dict[str, Any], paths: list[str], blinding: bytes, token: str | None) -> Any:
                redacted, disclosures = redact(statement, [*HIDDEN, *paths], blinding_key=blinding)
                payload = json.dumps(redacted, separators=(",", ":")).encode()
                sub = signed_submission(key, payload, server.platform, disclosures=disclosures)
                return http.post("/api/v1/entries", json=sub, headers=_bearer(token) if token else {})

            # The attacks: another tenant's blinding, a blinded key with no hidden digest behind it, and a
            # blinded digest from no tenant at all.
            r = submit(_hidden_statement(10), [dataset], other_key, vendor)
            _problem(r, 400, "invalid-disclosure")
            assert "not the tenant's blinding" in r.json()["detail"]
            squat = _statement(11)
            squat["predicate"]["buildDefinition"]["resolvedDependencies"][0]["digest"] = {
                "blinded+sha256": told["hidden"][f"sha256:{SECRET_DATA}"].split(":")[1]
            }
            _problem(submit(squat, [], vendor_key, other), 400, "invalid-disclosure")
            _problem(submit(_hidden_statement(12), [dataset], vendor_key, None), 400, "invalid-disclosure")
            assert http.get("/api/v1/log").json()["treeSize"] == 0
            # The real ones: the dataset hidden in both, the model's digest hidden in the second.
            first = submit(_hidden_statement(13), [dataset], vendor_key, vendor)
            second = submit(_hidden_statement(14), [dataset, "subject[0].digest"], vendor_key, vendor)
            assert first.status_code == 201 and second.status_code == 201, (first.text, second.text)
            indices = [first.json()["logIndex"], second.json()["logIndex"]]
            hidden_model = hashlib.sha256(b"m14").hexdigest()
            base = hashlib.sha256(b"base").hexdigest()
            public = [
                *(http.get(f"/api/v1/entries/{i}").text for i in indices),
                http.get("/api/v1/submissions", params={"start": 0, "count": 2}).text,
                _bundle(http, indices[1]),
                http.get(f"/api/v1/artifacts/sha256:{base}/lineage", params={"direction": "down"}).text,
                http.get(f"/api/v1/artifacts/sha256:{hashlib.sha256(b'm13').hexdigest()}/lineage").text,
                http.get("/api/v1/search", params={"name": "model-14"}).text,
            ]
            for text in public:
                assert SECRET_DATA not in text and hidden_model not in text
            # Asked publicly by the real digest, the log knows nothing of them.
            nothing = http.get(f"/api/v1/artifacts/sha256:{SECRET_DATA}/history")
            assert SECRET_DATA in nothing.text  # the request's own digest, echoed; but no entry:
            assert nothing.status_code == 404 or nothing.json().get("entries") == []
        with LogClient(server.url, server.vkey, token=whole["token"]) as client:
            deadline = time.monotonic() + 30
            while (status := client.map_status()).commitment is None or status.commitment.tree_size < 2:
                assert time.monotonic() < deadline, "the map never committed the entries"
                time.sleep(0.1)
            blinded = client.hidden(f"sha256:{SECRET_DATA}")
            assert blinded.startswith("blinded+sha256:")
            history = client.history(blinded)
            assert [e.log_index for e in history.entries] == indices[::-1] and history.incomplete is None
            # The hidden model links down from the hidden dataset and up to the public base model.
            down = client.lineage(blinded, "down")
            assert client.hidden(f"sha256:{hidden_model}") in down.nodes and down.complete
            up = client.lineage(client.hidden(f"sha256:{hidden_model}"), "up")
            assert f"sha256:{base}" in up.nodes and blinded in up.nodes
            # Each entry found reveals the digest it hides.
            revealed = client.disclosures(indices[1]).revealed.statement
            assert revealed["subject"][0]["digest"]["sha256"] == hidden_model
            assert revealed["predicate"]["buildDefinition"]["resolvedDependencies"][0]["digest"]["sha256"] == (
                SECRET_DATA
            )
        with LogClient(server.url, server.vkey, token=scoped["token"]) as client:
            # The scoped grant finds the dataset's entries and reads them, and nothing else.
            assert client.hidden(f"sha256:{SECRET_DATA}") == blinded
            assert client.disclosures(indices[0]).revealed.statement["subject"][0]["name"] == "model-13"
            with pytest.raises(LogAPIError, match="not one of the artifacts"):
                client.hidden(f"sha256:{hidden_model}")
        with httpx.Client(base_url=server.url, timeout=30) as http:
            # An entry of the tenant that names another dataset is out of the scoped grant's reach.
            elsewhere = _statement(15)
            elsewhere["predicate"]["buildDefinition"]["resolvedDependencies"][0]["digest"]["sha256"] = "0f" * 32
            redacted, disclosures = redact(elsewhere, HIDDEN)
            sub = signed_submission(key, json.dumps(redacted).encode(), server.platform, disclosures=disclosures)
            other_entry = http.post("/api/v1/entries", json=sub, headers=_bearer(vendor)).json()["logIndex"]
            _problem(
                http.get(f"/api/v1/entries/{other_entry}/disclosures", headers=_bearer(scoped["token"])),
                403,
                "not-granted",
            )
            reads = http.get("/api/v1/disclosure-reads", headers=_bearer(vendor)).json()["reads"]
            assert {"blinding-key", "read"} <= {r["action"] for r in reads}
        # The server's log names the real digest only where the test asked for it publicly.
        asked = f"/api/v1/artifacts/sha256:{SECRET_DATA}/history"
        assert all(asked in line for line in server.log_path.read_text().splitlines() if SECRET_DATA in line)
    finally:
        server.stop()


KMS = """
import base64, os, sys, time
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
aead = AESGCM(bytes(range(32)))
for line in sys.stdin:
    while os.path.exists(sys.argv[1]):  # the service is down while the flag file exists
        time.sleep(0.1)
    verb, context, value = line.split()
    context, value = base64.b64decode(context), base64.b64decode(value)
    if verb == "wrap":
        nonce = os.urandom(12)
        out = nonce + aead.encrypt(nonce, value, context)
    else:
        out = aead.decrypt(value[:12], value[12:], context)
    print(base64.b64encode(out).decode(), flush=True)
"""


def test_an_external_kms_wraps_the_keys_and_its_outage_is_a_503(db_url: str, tmp_path: Path) -> None:
    """With ``ATLAS_DISCLOSURE_KEK_COMMAND`` the data keys are wrapped by an external service: entries are
    sealed and read through it, no key file is made, and while it does not answer, submissions and reads
    get 503 ``vault-unavailable`` (nothing written), then succeed again."""
    down = tmp_path / "kms-down"
    command = f"{sys.executable} -c {shlex.quote(KMS)} {shlex.quote(str(down))}"
    env = {
        "ATLAS_DISCLOSURE_KEK_COMMAND": command,
        "ATLAS_DISCLOSURE_KEK_TIMEOUT_S": "1",
        "ATLAS_ADMIN_TOKEN_SHA256": hashlib.sha256(ADMIN.encode()).hexdigest(),
    }
    server = ServerProcess(db_url, tmp_path / "data", env=env)
    key = Ed25519PrivateKey.generate()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            r = http.post("/api/v1/entries", json=_confidential(key, 20, server.platform)[0])
            assert r.status_code == 201, r.text
            index = r.json()["logIndex"]
            assert not (tmp_path / "data" / "disclosures" / "kek").exists()
            read = http.get(f"/api/v1/entries/{index}/disclosures", headers=_bearer(ADMIN))
            assert read.status_code == 200 and len(read.json()["disclosures"]) == 3
            down.touch()
            r = http.post("/api/v1/entries", json=_confidential(key, 21, server.platform)[0])
            _problem(r, 503, "vault-unavailable")
            assert "did not answer within 1 s" in r.json()["detail"] and r.headers.get("Retry-After")
            _problem(http.get(f"/api/v1/entries/{index}/disclosures", headers=_bearer(ADMIN)), 503, "vault-unavailable")
            assert http.get("/api/v1/log").json()["treeSize"] == 1
            down.unlink()
            r = http.post("/api/v1/entries", json=_confidential(key, 21, server.platform)[0])
            assert r.status_code == 201, r.text
            assert http.get(f"/api/v1/entries/{index}/disclosures", headers=_bearer(ADMIN)).status_code == 200
    finally:
        server.stop()
