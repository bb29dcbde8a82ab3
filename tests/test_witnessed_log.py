"""A log with two witnesses (real processes) and a 2-of-2 policy: published checkpoints carry both
cosignatures, wait=witnessed receipts verify under the policy, and receipts upgrade by consistency."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from atlas_log.client import LogClient
from atlas_log.cosignature import CosignatureVerifier, CosignatureWindow
from atlas_log.errors import SignatureError
from atlas_log.note import Signer
from atlas_log.receipt import Receipt, verify_receipt
from atlas_log.submission import intoto_statement
from atlas_log.testing.demo import demo_submission
from tests.conftest import ServerProcess
from tests.test_witness import Witness


def test_witnessed_checkpoints_and_receipts(db_url: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    log_key = Signer.generate("atlas-log.localhost/dev")
    data.mkdir(parents=True)
    (data / "log.key").write_text(log_key.skey + "\n")
    witnesses = [Witness(tmp_path / f"w{i}", log_key.verifier.vkey, f"witness.example/w{i}") for i in range(2)]
    server = ServerProcess(
        db_url,
        data,
        env={
            "ATLAS_WITNESSES": json.dumps([f"{w.url} {w.vkey}" for w in witnesses]),
            "ATLAS_WITNESS_QUORUM": "2",
            "ATLAS_CHECKPOINT_INTERVAL_S": "0.2",
        },
    )
    try:
        policy = [CosignatureVerifier.from_vkey(w.vkey) for w in witnesses]
        key = Ed25519PrivateKey.generate()
        first = httpx.post(server.url + "/api/v1/entries", json=demo_submission(key, 1, server.platform), timeout=30)
        assert first.status_code == 201
        r = httpx.post(
            server.url + "/api/v1/entries",
            params={"wait": "witnessed"},
            json=demo_submission(key, 2, server.platform),
            timeout=60,
        )
        assert r.status_code == 201, r.text
        cp = verify_receipt(r.json(), log_key.verifier, witnesses=policy, quorum=2)
        assert cp.size >= 2
        unwitnessed = Receipt.from_json(first.json())
        with pytest.raises(SignatureError):  # a batch checkpoint carries no cosignatures
            verify_receipt(unwitnessed, log_key.verifier, witnesses=policy, quorum=1)
        with httpx.Client(base_url=server.url, timeout=30) as http:
            client = LogClient(http, log_key.verifier, witnesses=policy, quorum=2)
            latest = client.verify_receipt_current(unwitnessed)  # upgraded through a consistency proof
            assert latest.size >= 2
            # Under a witness policy submit() asks for, and checks, a receipt against a cosigned checkpoint.
            assert client.submit(demo_submission(key, 3, server.platform)).tree_size >= 3
            # An artifact's history is proved against a published (cosigned) checkpoint, which the policy accepts.
            subject = json.loads(base64.b64decode(r.json()["leaf"]))["body"]["index"]["subjects"][0]
            history = client.history(subject)
            assert [e.log_index for e in history.entries] == [r.json()["logIndex"]]
            strict = LogClient(
                http,
                log_key.verifier,
                witnesses=[
                    *policy[:1],
                    CosignatureVerifier.from_vkey(Signer.generate("witness.example/other").verifier.vkey),
                ],
                quorum=2,
            )
            with pytest.raises(SignatureError):
                strict.checkpoint()
        # The command line: a submission that waits until its checkpoint is witnessed by the policy's quorum,
        # and a receipt that verifies offline under the same policy (the witnesses' keys from the environment).
        key_file, statement = tmp_path / "k.pem", tmp_path / "s.json"
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        statement.write_bytes(intoto_statement([("m", "cd" * 32)], "https://atlas-log.dev/demo/v1", {}))
        env = {"ATLAS_LOG_WITNESSES": " ".join(w.vkey for w in witnesses)}
        common = ["--server", server.url, "--vkey", log_key.verifier.vkey]
        receipt_file = tmp_path / "witnessed.json"
        out = _cli(
            *common,
            "submit",
            "--statement",
            str(statement),
            "--key",
            str(key_file),
            "--wait-witnessed",
            "--simulated-platform",
            str(data / "simulated-tdx"),
            "--receipt",
            str(receipt_file),
            env=env,
        )
        assert out.returncode == 0 and "witnessed by 2 witnesses" in out.stdout, out.stderr
        verify_receipt(json.loads(receipt_file.read_text()), log_key.verifier, witnesses=policy, quorum=2)
        assert _cli("verify", str(receipt_file), "--vkey", log_key.verifier.vkey, env=env).returncode == 0
        assert (
            _cli(
                *common,
                "submit",
                "--statement",
                str(statement),
                "--key",
                str(key_file),
                "--wait-witnessed",
                "--no-quote",
            ).returncode
            == 2
        )  # no witnesses named
    finally:
        server.stop()
        for w in witnesses:
            w.stop()


def test_witnesses_given_without_a_quorum_must_all_cosign(server: ServerProcess) -> None:
    """Naming witnesses is asking for their cosignatures: without a quorum, all of them (as the command line
    does), never none. This log has no witnesses, so no checkpoint it signs passes such a policy."""
    witness = CosignatureVerifier.from_vkey(Signer.generate("witness.example/w").verifier.vkey)
    submission = demo_submission(Ed25519PrivateKey.generate(), 1, server.platform)
    r = httpx.post(server.url + "/api/v1/entries", json=submission, timeout=30)
    assert r.status_code == 201, r.text
    verify_receipt(r.json(), server.vkey)
    with pytest.raises(SignatureError):
        verify_receipt(r.json(), server.vkey, witnesses=[witness])
    with httpx.Client(base_url=server.url, timeout=30) as http:
        with pytest.raises(SignatureError):
            LogClient(http, server.vkey, witnesses=[witness]).checkpoint()
        assert LogClient(http, server.vkey, witnesses=[witness], quorum=0).checkpoint()[0].size >= 1
        with pytest.raises(ValueError, match="quorum of 2 needs at least 2 witnesses"):
            LogClient(http, server.vkey, witnesses=[witness], quorum=2)


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "atlas_log.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_an_idle_witnessed_log_stays_fresh(db_url: str, tmp_path: Path) -> None:
    """With fresh nonces required, an idle witnessed log re-publishes its unchanged checkpoint with fresh
    cosignatures: a client that demands cosignatures younger than the nonce age keeps accepting its view, and
    the root it serves keeps being accepted as a nonce."""
    max_age = 4
    data = tmp_path / "data"
    log_key = Signer.generate("atlas-log.localhost/dev")
    data.mkdir(parents=True)
    (data / "log.key").write_text(log_key.skey + "\n")
    witness = Witness(tmp_path / "w", log_key.verifier.vkey, "witness.example/w0")
    server = ServerProcess(
        db_url,
        data,
        env={
            "ATLAS_WITNESSES": json.dumps([f"{witness.url} {witness.vkey}"]),
            "ATLAS_WITNESS_QUORUM": "1",
            "ATLAS_CHECKPOINT_INTERVAL_S": "0.2",
            "ATLAS_REQUIRE_FRESH_NONCE": "true",
            "ATLAS_NONCE_MAX_AGE_S": str(max_age),
        },
    )
    try:
        key = Ed25519PrivateKey.generate()
        with httpx.Client(base_url=server.url, timeout=30) as http:
            client = LogClient(
                http,
                log_key.verifier,
                witnesses=[CosignatureVerifier.from_vkey(witness.vkey)],
                quorum=1,
                cosignature_window=CosignatureWindow(max_future_s=5, max_age_s=max_age),
            )
            for n in (1, 2):
                deadline = time.monotonic() + 10
                while http.get("/checkpoint").status_code != 200 and time.monotonic() < deadline:
                    time.sleep(0.1)  # the first publication follows the start within an interval
                cp, _ = client.checkpoint()
                r = http.post("/api/v1/entries", json=demo_submission(key, n, server.platform, cp.root_hash))
                assert r.status_code == 201, r.text
                time.sleep(max_age + 2)  # idle past the nonce age and the cosignature age
            cp, _ = client.checkpoint()  # still a view cosigned within the last max_age seconds
            assert cp.size == 2
            r = http.post("/api/v1/entries", json=demo_submission(key, 3, server.platform, cp.root_hash))
            assert r.status_code == 201, r.text
    finally:
        server.stop()
        witness.stop()
