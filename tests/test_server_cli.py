"""The server's command line: serve on its own embedded PostgreSQL, migrate, keygen."""

from __future__ import annotations

import asyncio
import importlib.metadata
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import asyncpg
import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from atlas_log.note import Signer, Verifier
from atlas_log.testing.demo import demo_submission
from atlas_log_server import cli
from tests.conftest import ServerProcess, free_port, with_database


def test_serve_with_no_database_url_uses_embedded_postgres(tmp_path: Path) -> None:
    data = Path(tempfile.mkdtemp(prefix="atlas-emb-"))  # short: the socket lives in the data folder
    server = ServerProcess(None, data, wait=120)
    try:
        out = server.log_path.read_text()
        vkey = httpx.get(server.url + "/api/v1/log").json()["verifierKey"]
        assert f"verifier key:  {vkey}" in out
        # The commands the banner prints work as printed (run from the data folder's parent, as `make run`).
        submit = next(line for line in out.splitlines() if "submit a first entry:" in line).split(":", 1)[1]
        verify = next(line for line in out.splitlines() if "check it offline:" in line).split(":", 1)[1]
        client = f"{sys.executable} -m atlas_log.cli"
        work = tmp_path / "work"
        (work / ".atlas-log").mkdir(parents=True)
        (work / ".atlas-log" / "simulated-tdx").symlink_to(data / "simulated-tdx")
        for command in (submit, verify):
            line = client + " " + command.strip().split(" ", 1)[1]
            run = subprocess.run(["bash", "-c", line], cwd=work, capture_output=True, text=True, timeout=120)
            assert run.returncode == 0, line + "\n" + run.stdout + run.stderr
        assert len(list((work / "receipts").glob("*.json"))) == 1
        explore = next(line for line in out.splitlines() if "explore it" in line).split(": ", 1)[1].strip()
        page = httpx.get(explore)
        assert page.status_code == 200 and 'id="verification"' in page.text
        assert httpx.URL(explore).params["vkey"] == vkey  # the link carries the key, escaped
        assert (data / "pgdata" / "PG_VERSION").exists()
        assert Signer.from_skey((data / "log.key").read_text()).verifier.vkey == vkey
        assert oct((data / "log.key").stat().st_mode & 0o777) == "0o600"
    finally:
        server.stop()
        shutil.rmtree(data, ignore_errors=True)


def test_keygen_and_migrate(tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    key = tmp_path / "k"
    assert cli.main(["keygen", "--key-file", str(key), "--origin", "example.org/log"]) == 0
    vkey = capsys.readouterr().out.strip()
    Verifier.from_vkey(vkey)
    assert Signer.from_skey(key.read_text()).verifier.vkey == vkey
    assert cli.main(["keygen", "--key-file", str(key), "--origin", "example.org/log"]) == 1  # refused
    assert capsys.readouterr().out == ""
    assert Signer.from_skey(key.read_text()).verifier.vkey == vkey  # never overwritten
    os.environ["ATLAS_DATABASE_URL"] = db_url
    try:
        assert cli.main(["migrate"]) == 0
    finally:
        del os.environ["ATLAS_DATABASE_URL"]


def test_bad_configuration_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    os.environ["ATLAS_ORIGIN"] = "has space"
    try:
        assert cli.main(["keygen", "--print-only"]) == 2
    finally:
        del os.environ["ATLAS_ORIGIN"]
    assert "origin must be non-empty" in capsys.readouterr().err


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, **env}
    cmd = [sys.executable, "-m", "atlas_log_server.cli", *args]
    return subprocess.run(cmd, env=full, capture_output=True, text=True, timeout=120)


def test_destructive_commands_ask_first(db_url: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = ServerProcess(db_url, data, env={"ATLAS_ALLOW_UNATTESTED": "true"})
    try:
        r = httpx.post(server.url + "/api/v1/entries", json=demo_submission(Ed25519PrivateKey.generate(), 0))
        assert r.status_code == 201
    finally:
        server.stop()
    env = {"ATLAS_DATABASE_URL": db_url, "ATLAS_DATA_DIR": str(data)}

    def state() -> tuple[int, bool]:
        async def read() -> tuple[int, bool]:
            conn = await asyncpg.connect(db_url)
            try:
                row = await conn.fetchrow("SELECT size, frozen_note IS NOT NULL AS frozen FROM log_state")
                assert row is not None
                return int(row["size"]), bool(row["frozen"])
            finally:
                await conn.close()

        return asyncio.run(read())

    # freeze: a successor or an explicit --no-successor, then --yes; until then nothing changes.
    for args, says in [
        ((), "--no-successor"),
        (("--successor-url", "http://next.example"), "--successor-vkey"),
        (("--no-successor",), "--yes"),
    ]:
        out = _cli("freeze", *args, env=env)
        assert out.returncode == 1 and says in out.stderr and "Traceback" not in out.stderr, out.stderr
        assert state() == (1, False)
    assert "permanent" in out.stderr and "size 1" in out.stderr  # says what it would do
    out = _cli("freeze", "--no-successor", "--yes", env=env)
    assert out.returncode == 0, out.stderr
    assert state() == (1, True)

    # migrate --downgrade: refuses while the log has entries, says what it would destroy.
    out = _cli("migrate", "--downgrade", env=env)
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    assert "1 entries" in out.stderr and "--yes" in out.stderr
    assert state() == (1, True)
    assert _cli("migrate", "--downgrade", "--yes", env=env).returncode == 0
    assert _cli("migrate", env=env).returncode == 0
    assert _cli("migrate", "--downgrade", env=env).returncode == 0  # an empty log: nothing to lose


def test_keygen_over_an_existing_key_asks_first(tmp_path: Path) -> None:
    key = tmp_path / "log.key"
    first = _cli("keygen", "--key-file", str(key), env={})
    assert first.returncode == 0
    again = _cli("keygen", "--key-file", str(key), env={})
    # Refused and kept, saying what --yes would destroy.
    assert again.returncode == 1 and again.stdout == ""
    assert Signer.from_skey(key.read_text()).verifier.vkey == first.stdout.strip()
    assert "--yes" in again.stderr and "destroy" in again.stderr
    replaced = _cli("keygen", "--key-file", str(key), "--yes", env={})
    assert replaced.returncode == 0, replaced.stderr
    assert replaced.stdout != first.stdout
    assert Signer.from_skey(key.read_text()).verifier.vkey == replaced.stdout.strip()
    assert oct(key.stat().st_mode & 0o777) == "0o600"


def test_operator_commands_print_no_traceback(tmp_path: Path) -> None:
    nowhere = f"postgresql://postgres@127.0.0.1:{free_port()}/none"
    missing = with_database(os.environ.get("ATLAS_TEST_DATABASE_URL", nowhere), "atlas_no_such_database")
    for url in (nowhere, missing):
        env = {"ATLAS_DATABASE_URL": url, "ATLAS_DATA_DIR": str(tmp_path)}
        for args in (("migrate",), ("migrate", "--downgrade", "--yes"), ("freeze", "--no-successor", "--yes")):
            out = _cli(*args, env=env)
            assert out.returncode != 0 and "Traceback" not in out.stderr, out.stderr
            assert out.stderr.startswith("atlas-log-server"), out.stderr


def test_version_is_printed() -> None:
    out = _cli("--version", env={})
    assert out.returncode == 0, out.stderr
    assert out.stdout == f"atlas-log-server {importlib.metadata.version('atlas-log')}\n"
