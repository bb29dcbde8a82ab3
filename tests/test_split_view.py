"""A misbehaving log: the test holds the log's key and runs two real servers with it, one honest and one
with a forked history. The witnesses refuse the fork, the monitor reports it with evidence in one round,
and a client with trusted state raises with evidence."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from atlas_log import cli
from atlas_log.client import LogClient
from atlas_log.errors import InconsistentLogError
from atlas_log.evidence import verify_evidence
from atlas_log.note import Signer
from atlas_log.testing.demo import demo_submission
from tests.conftest import ServerProcess, copy_database
from tests.test_witness import Witness


def test_forked_log_is_caught(
    pg_url: str, template_db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = Signer.generate("atlas-log.localhost/dev")
    urls = []
    for name in ("honest", "forked"):
        urls.append(copy_database(pg_url, template_db, f"atlas_split_{name}_{id(tmp_path)}"))
        (tmp_path / name).mkdir()
        (tmp_path / name / "log.key").write_text(key.skey + "\n")
    witnesses = [Witness(tmp_path / f"w{i}", key.verifier.vkey, f"witness.example/w{i}") for i in range(2)]
    honest = ServerProcess(
        urls[0],
        tmp_path / "honest",
        env={
            "ATLAS_WITNESSES": json.dumps([f"{w.url} {w.vkey}" for w in witnesses]),
            "ATLAS_WITNESS_QUORUM": "2",
            "ATLAS_CHECKPOINT_INTERVAL_S": "0.2",
        },
    )
    forked = ServerProcess(urls[1], tmp_path / "forked")
    try:
        sk = Ed25519PrivateKey.generate()
        for i in range(3):
            assert (
                httpx.post(
                    honest.url + "/api/v1/entries",
                    params={"wait": "witnessed"},
                    timeout=60,
                    json=demo_submission(sk, i, honest.platform),
                ).status_code
                == 201
            )
        for i in range(5):
            assert (
                httpx.post(
                    forked.url + "/api/v1/entries", timeout=60, json=demo_submission(sk, 100 + i, forked.platform)
                ).status_code
                == 201
            )
        # The witnesses refuse the fork: stale size first, then a proof that cannot join the trees.
        fork_note = httpx.get(forked.url + "/checkpoint").content
        for w in witnesses:
            assert w.post(b"old 0\n\n" + fork_note).status_code == 409
            proof = httpx.get(forked.url + "/api/v1/proofs/consistency", params={"from": 3, "to": 5}).json()["hashes"]
            req = ("old 3\n" + "".join(p + "\n" for p in proof) + "\n").encode() + fork_note
            assert w.post(req).status_code == 422
        # The monitor sees both views and reports the fork in one round.
        evidence_dir = tmp_path / "evidence"
        rc = cli.main(
            [
                "monitor",
                "--once",
                "--log",
                honest.url,
                "--log",
                forked.url,
                "--vkey",
                key.verifier.vkey,
                "--evidence-dir",
                str(evidence_dir),
            ]
        )
        assert rc == 3
        (ev_file,) = evidence_dir.glob("*.json")
        assert "do not join" in verify_evidence(json.loads(ev_file.read_text()), key.verifier.vkey)
        capsys.readouterr()
        # A client that trusted the honest view raises, with both signed checkpoints and the proof.
        state = tmp_path / "trusted.json"
        with httpx.Client(base_url=honest.url) as http:
            LogClient(http, key.verifier, state_file=state).checkpoint()
        with httpx.Client(base_url=forked.url) as http, pytest.raises(InconsistentLogError) as e:
            LogClient(http, key.verifier, state_file=state).checkpoint()
        assert e.value.old_checkpoint != e.value.new_checkpoint and e.value.proof
        assert all(len(p) == 32 for p in e.value.proof)
    finally:
        honest.stop()
        forked.stop()
        for w in witnesses:
            w.stop()
