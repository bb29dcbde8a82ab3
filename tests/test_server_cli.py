"""The server's command line: serve on its own embedded PostgreSQL, migrate, keygen."""

from __future__ import annotations

import os
import shutil
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
        assert "atlas-log demo --count 1" in out
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
