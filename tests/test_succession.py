"""Freezing a log and handing over to a successor: read-only after, verifiable, followed by monitors."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from atlas_log.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint, succession
from atlas_log.errors import InconsistentLogError
from atlas_log.evidence import evidence_from_error, verify_evidence
from atlas_log.note import Signer, Verifier
from atlas_log.receipt import verify_receipt
from atlas_log.testing.demo import demo_submission
from atlas_log.trusted_state import TrustedState
from tests.conftest import ServerProcess, _admin, with_database

ENV = {"ATLAS_ALLOW_UNATTESTED": "true"}


@pytest.mark.timeout(240)
def test_freeze_hands_over_to_a_successor(db_url: str, pg_url: str, tmp_path: Path) -> None:
    old = ServerProcess(db_url, tmp_path / "old", env=ENV)
    asyncio.run(
        _admin(pg_url, 'DROP DATABASE IF EXISTS "atlas_successor_test"', 'CREATE DATABASE "atlas_successor_test"')
    )
    new_db = with_database(pg_url, "atlas_successor_test")
    new = ServerProcess(new_db, tmp_path / "new", env={**ENV, "ATLAS_ORIGIN": "atlas-log.localhost/successor"})
    try:
        key = Ed25519PrivateKey.generate()
        vkey = Verifier.from_vkey(old.vkey)
        receipts = [httpx.post(old.url + "/api/v1/entries", json=demo_submission(key, i)).json() for i in range(3)]
        trusted = TrustedState(vkey)
        trusted.advance(httpx.get(old.url + "/checkpoint").content, [])

        env = {**os.environ, "ATLAS_DATABASE_URL": db_url, "ATLAS_DATA_DIR": str(tmp_path / "old")}
        cmd = [sys.executable, "-m", "atlas_log_server.cli", "freeze", "--successor-url", new.url]
        out = subprocess.run([*cmd, "--successor-vkey", new.vkey, "--yes"], env=env, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        final_note = out.stdout.encode()

        # Read-only: submissions are refused and name the successor; the final checkpoint is served.
        r = httpx.post(old.url + "/api/v1/entries", json=demo_submission(key, 99))
        assert r.status_code == 410 and r.json()["type"].endswith("/log-frozen") and new.url in r.json()["detail"]
        served = httpx.get(old.url + "/checkpoint").content
        assert served == final_note
        final = open_checkpoint(served, vkey)
        assert final.size == 3 and succession(final) is not None
        assert succession(final).url == new.url and succession(final).vkey == new.vkey  # type: ignore[union-attr]
        assert httpx.get(old.url + "/api/v1/log").json()["frozen"]["checkpoint"] == served.decode()
        for receipt in receipts:  # old receipts keep verifying
            assert verify_receipt(receipt, vkey).size <= final.size
        trusted.advance(served, [])
        assert succession(trusted.checkpoint) is not None  # type: ignore[arg-type]

        # A frozen log that signs a larger tree is caught, with evidence that stands on its own.
        signer = Signer.from_skey((tmp_path / "old" / "log.key").read_text().strip())
        grown = sign_checkpoint(Checkpoint(final.origin, 4, final.root_hash), signer)
        with pytest.raises(InconsistentLogError) as caught:
            trusted.advance(grown, [])
        assert caught.value.kind == "frozen"
        assert "frozen" in verify_evidence(evidence_from_error(caught.value, vkey), vkey)

        # The database itself refuses to change a frozen state.
        async def grow() -> None:
            conn = await asyncpg.connect(db_url)
            try:
                await conn.execute("UPDATE log_state SET size = size + 1")
            finally:
                await conn.close()

        with pytest.raises(asyncpg.PostgresError, match="frozen"):
            asyncio.run(grow())

        # A monitor keeps watching the frozen log and follows its successor.
        httpx.post(new.url + "/api/v1/entries", json=demo_submission(key, 0))
        monitor = [sys.executable, "-m", "atlas_log.cli", "--json", "monitor", "--log", old.url, "--vkey", old.vkey]
        mon = subprocess.run(
            [*monitor, "--follow-successor", "--once", "--evidence-dir", str(tmp_path / "ev")],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert mon.returncode == 0, mon.stdout + mon.stderr
        report = json.loads(mon.stdout.strip().splitlines()[-1])
        assert report["frozen"] == {"successorUrl": new.url, "successorKey": new.vkey}
        assert report["size"] == 3 and report["successorSize"] == 1
    finally:
        old.stop()
        new.stop()
        asyncio.run(_admin(pg_url, 'DROP DATABASE IF EXISTS "atlas_successor_test" WITH (FORCE)'))
