"""The server's command line: serve on its own embedded PostgreSQL, migrate, keygen."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import pytest

from atlas_log.note import Signer, Verifier
from atlas_log_server import cli
from tests.conftest import ServerProcess


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
    assert cli.main(["keygen", "--key-file", str(key), "--origin", "example.org/log"]) == 0
    assert capsys.readouterr().out.strip() == vkey  # never overwritten
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
