"""A rolled-back database cannot make the log sign a second tree of a size it already signed.

The signer keeps a durable record of the last checkpoint it signed beside the key; a server whose database is
behind that record (restored from a backup, failed over to a lagging replica, migrated down and up) serves
reads but refuses writes, and says how to recover.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from atlas_log.checkpoint import open_checkpoint
from atlas_log.note import Verifier
from atlas_log.testing.demo import demo_submission
from atlas_log_server import cli
from atlas_log_server.log.last_signed import SignedRecord, TreeHead
from tests.conftest import ServerProcess, _admin, with_database

ENV = {"ATLAS_ALLOW_UNATTESTED": "true"}


def _post(server: ServerProcess, key: Ed25519PrivateKey, n: int) -> httpx.Response:
    return httpx.post(server.url + "/api/v1/entries", json=demo_submission(key, n), timeout=30)


def _assert_writes_refused(
    server: ServerProcess, key: Ed25519PrivateKey, signed: bytes, last_size: int, vkey: str
) -> None:
    """Reads work; a new entry is refused (before the guard it was logged as a second tree of ``signed``'s
    size); the refusal names ``last_size``, the newest size the log signed."""
    verifier = Verifier.from_vkey(vkey)
    started = time.monotonic()
    served = open_checkpoint(httpx.get(server.url + "/checkpoint").content, verifier)
    assert time.monotonic() - started < 2
    earlier = open_checkpoint(signed, verifier)
    assert served.size < earlier.size  # the database really is behind what the log signed
    r = _post(server, key, 1000)
    if r.status_code == 201:  # the attack worked: show what it produced before failing
        forked = open_checkpoint(r.json()["checkpoint"].encode(), verifier)
        raise AssertionError(f"signed size {forked.size} root {forked.root_hash.hex()} over a rolled-back database")
    assert r.status_code == 503, r.text
    problem = r.json()
    assert problem["type"].endswith("/signing-refused")
    assert f"already signed a tree of size {last_size}" in problem["detail"] and "rolled back" in problem["detail"]
    assert "freeze" in problem["detail"]  # says how to recover
    assert "rolled back" in server.log_path.read_text()  # and the operator saw it at start


def _log_two_entries(db_url: str, data: Path, key: Ed25519PrivateKey) -> str:
    """Log entries 0 and 1 with a server on ``data`` and stop it; return the log's verifier key."""
    server = ServerProcess(db_url, data, env=ENV)
    try:
        assert [_post(server, key, i).status_code for i in range(2)] == [201, 201]
        return server.vkey
    finally:
        server.stop()


def test_a_database_restored_from_a_backup_gets_no_writes(db_url: str, pg_url: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    key = Ed25519PrivateKey.generate()
    vkey = _log_two_entries(db_url, data, key)
    name = urlsplit(db_url).path.lstrip("/")  # the embedded server's URL names its socket folder in the query
    backup = name + "_backup"
    asyncio.run(_admin(pg_url, f'CREATE DATABASE "{backup}" TEMPLATE "{name}"'))  # the nightly backup
    try:
        server = ServerProcess(db_url, data, env=ENV)
        try:
            r = _post(server, key, 2)
            assert r.status_code == 201
            signed = r.json()["checkpoint"].encode()  # size 3, handed to a client
            r = _post(server, key, 3)
            assert r.status_code == 201
            newest = open_checkpoint(r.json()["checkpoint"].encode(), Verifier.from_vkey(vkey))
        finally:
            server.stop()
        # The database is lost and restored from the backup; the key folder survives.
        server = ServerProcess(with_database(pg_url, backup), data, env=ENV)
        try:
            _assert_writes_refused(server, key, signed, 4, vkey)
            assert httpx.get(server.url + "/api/v1/entries/1").status_code == 200
        finally:
            server.stop()
        # The way out: freeze. The final checkpoint is the newest the log signed (size 4), not the restored
        # size 2, which a client holding size 4 would take for a log going back in time.
        env = {**os.environ, "ATLAS_DATABASE_URL": with_database(pg_url, backup), "ATLAS_DATA_DIR": str(data)}
        cmd = [sys.executable, "-m", "atlas_log_server.cli", "freeze", "--no-successor", "--yes"]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        final = open_checkpoint(out.stdout.encode(), Verifier.from_vkey(vkey))
        assert (final.size, final.root_hash) == (newest.size, newest.root_hash)
        assert "entries 2 to 3 are not in this database" in out.stderr
    finally:
        asyncio.run(_admin(pg_url, f'DROP DATABASE IF EXISTS "{backup}" WITH (FORCE)'))


def test_migrating_down_and_up_gets_no_writes(db_url: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    key = Ed25519PrivateKey.generate()
    server = ServerProcess(db_url, data, env=ENV)
    try:
        signed = [_post(server, key, i) for i in range(2)][-1].json()["checkpoint"].encode()
        vkey = server.vkey
    finally:
        server.stop()
    os.environ["ATLAS_DATABASE_URL"] = db_url
    try:
        assert cli.main(["migrate", "--downgrade", "--yes"]) == 0
        assert cli.main(["migrate"]) == 0
    finally:
        del os.environ["ATLAS_DATABASE_URL"]
    server = ServerProcess(db_url, data, env=ENV)
    try:
        _assert_writes_refused(server, key, signed, 2, vkey)
    finally:
        server.stop()


def test_migrating_a_frozen_log_down_and_up_does_not_unfreeze_it(db_url: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    key = Ed25519PrivateKey.generate()
    server = ServerProcess(db_url, data, env=ENV)
    try:
        assert _post(server, key, 0).status_code == 201
    finally:
        server.stop()
    env = {**os.environ, "ATLAS_DATABASE_URL": db_url, "ATLAS_DATA_DIR": str(data)}
    for args in (["freeze", "--no-successor", "--yes"], ["migrate", "--downgrade", "--revision", "0007", "--yes"]):
        out = subprocess.run([sys.executable, "-m", "atlas_log_server.cli", *args], env=env, capture_output=True)
        assert out.returncode == 0, out.stderr
    os.environ["ATLAS_DATABASE_URL"] = db_url
    try:
        assert cli.main(["migrate"]) == 0  # the frozen state is gone from the database...
    finally:
        del os.environ["ATLAS_DATABASE_URL"]
    server = ServerProcess(db_url, data, env=ENV)
    try:
        assert httpx.get(server.url + "/api/v1/log").json()["frozen"] is None
        r = _post(server, key, 1)  # ...but not from the signer: nothing is signed past the final checkpoint
        assert r.status_code == 503, r.text
        assert r.json()["type"].endswith("/signing-refused") and "frozen at size 1" in r.json()["detail"]
    finally:
        server.stop()


def test_a_batch_signed_but_not_known_to_have_committed_stops_writes_until_the_operator_decides(
    db_url: str, tmp_path: Path
) -> None:
    """The server died between signing a batch and learning that it committed, and the database (restored, or
    never committed it) holds the batch's base: the pending checkpoint may have been served, so no tree is signed
    over that base until the database reaches the pending tree, the operator releases it (the database was not
    restored: it never committed) or freezes the log at the pending tree."""
    data = tmp_path / "data"
    key = Ed25519PrivateKey.generate()
    vkey = _log_two_entries(db_url, data, key)
    (path,) = data.rglob("*.last-signed")
    base = SignedRecord.decode(path.read_bytes())
    pending = TreeHead(4, bytes(range(32)))  # signed and recorded; the process died before learning the outcome
    path.write_bytes(SignedRecord(base.key, base.committed, pending).encode())
    server = ServerProcess(db_url, data, env=ENV)
    try:
        r = _post(server, key, 2)
        assert r.status_code == 503 and r.json()["type"].endswith("/signing-refused"), r.text
        assert "not told whether its batch committed" in r.json()["detail"]
        assert "release-pending" in r.json()["detail"] and "freeze" in r.json()["detail"]
        env = {**os.environ, "ATLAS_DATABASE_URL": db_url, "ATLAS_DATA_DIR": str(data)}
        release = [sys.executable, "-m", "atlas_log_server.cli", "release-pending"]
        out = subprocess.run(release, env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 1 and "not releasing" in out.stderr  # --yes: the operator vouches for it
        out = subprocess.run([*release, "--yes"], env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert _post(server, key, 2).status_code == 201  # the running server signs over size 2 again
    finally:
        server.stop()
    # Pending again, and the log frozen instead: its final checkpoint is the pending tree, the newest one the
    # log may have handed out.
    base = SignedRecord.decode(path.read_bytes())
    pending = TreeHead(5, bytes(range(1, 33)))
    path.write_bytes(SignedRecord(base.key, base.committed, pending).encode())
    env = {**os.environ, "ATLAS_DATABASE_URL": db_url, "ATLAS_DATA_DIR": str(data)}
    cmd = [sys.executable, "-m", "atlas_log_server.cli", "freeze", "--no-successor", "--yes"]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    final = open_checkpoint(out.stdout.encode(), Verifier.from_vkey(vkey))
    assert (final.size, final.root_hash) == (pending.size, pending.root)
