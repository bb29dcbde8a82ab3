"""The server's command line: serve on its own embedded PostgreSQL, migrate, keygen."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from atlas_log.note import Signer, Verifier
from atlas_log.testing.demo import demo_submission
from atlas_log_server import cli
from atlas_log_server.witness.key import load_witness_key
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
        audit = next(line for line in out.splitlines() if "audit it (replay):" in line).split(":", 1)[1]
        composite = next(line for line in out.splitlines() if "one with GPU evidence:" in line).split(":", 1)[1]
        root = next(line for line in out.splitlines() if "simulated TDX root:" in line).split(":", 1)[1].strip()
        attestation = httpx.get(server.url + "/api/v1/log").json()["attestation"]
        assert root == attestation["simulatedRoot"]
        for name, key in (("device", "deviceRoot"), ("RIM", "rimRoot")):
            printed = next(line for line in out.splitlines() if f"simulated GPU {name} root:" in line)
            assert printed.split(":", 1)[1].strip() == attestation["gpu"][key]
        client = f"{sys.executable} -m atlas_log.cli"
        work = tmp_path / "work"
        (work / ".atlas-log").mkdir(parents=True)
        (work / ".atlas-log" / "simulated-tdx").symlink_to(data / "simulated-tdx")
        (work / ".atlas-log" / "simulated-gpu").symlink_to(data / "simulated-gpu")
        for command in (submit, composite, verify, audit):
            line = client + " " + command.strip().split(" ", 1)[1]
            run = subprocess.run(["bash", "-c", line], cwd=work, capture_output=True, text=True, timeout=120)
            assert run.returncode == 0, line + "\n" + run.stdout + run.stderr
            assert "trusting the key the server announced" not in run.stderr, line  # the banner pins the key
        assert len(list((work / "receipts").glob("*.json"))) == 1
        explore = next(line for line in out.splitlines() if "explore it" in line).split(": ", 1)[1].strip()
        page = httpx.get(explore)
        assert page.status_code == 200 and 'id="verification"' in page.text
        assert httpx.URL(explore).params["vkey"] == vkey  # the link carries the key, escaped
        assert (data / "pgdata" / "PG_VERSION").exists()
        assert Signer.from_skey((data / "log.key").read_text()).verifier.vkey == vkey
        assert oct((data / "log.key").stat().st_mode & 0o777) == "0o600"
        # A development log's admin token: private, named by the banner, and it opens the admin API.
        assert f"admin API token:        in {data / 'admin.token'} (development only)" in out
        assert oct((data / "admin.token").stat().st_mode & 0o777) == "0o600"
        admin = {"Authorization": "Bearer " + (data / "admin.token").read_text().strip()}
        assert httpx.get(server.url + "/admin/v1/tenants", headers=admin).status_code == 200
        assert httpx.get(server.url + "/admin/v1/tenants", headers={"Authorization": "Bearer x"}).status_code == 401
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
            assert out.returncode != 0
            assert _one_line(out.stderr).startswith("atlas-log-server"), out.stderr


def test_version_is_printed_and_every_command_describes_itself() -> None:
    out = _cli("--version", env={})
    assert out.returncode == 0, out.stderr
    assert out.stdout == f"atlas-log-server {importlib.metadata.version('atlas-log')}\n"
    commands = re.search(r"\{([a-z,-]+)\}", _cli("--help", env={}).stdout)
    assert commands is not None
    for name in commands.group(1).split(","):
        rest = _cli(name, "--help", env={}).stdout.partition("\n\n")[2]
        assert rest.strip() and not rest.lstrip().startswith(("options:", "positional")), (name, rest)


def _one_line(stderr: str) -> str:
    """The single line a failed command wrote to stderr (there must be exactly one, and no traceback)."""
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


def _env_without_database(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "ATLAS_DATABASE_URL"}
    return {**env, **extra}


def test_witness_vkey_needs_an_existing_key_of_that_name(tmp_path: Path) -> None:
    key = tmp_path / "witness.key"
    missing = _cli("witness-vkey", "--name", "w.example", "--key", str(key), env={})
    assert missing.returncode != 0 and missing.stdout == ""
    assert str(key) in _one_line(missing.stderr) and "witness-keygen" in missing.stderr
    assert not key.exists()  # nothing created
    made = _cli("witness-keygen", "--name", "w.example", "--key", str(key), env={})
    assert made.returncode == 0, made.stderr
    signer = load_witness_key(key, "w.example")
    assert made.stdout == signer.verifier.vkey + "\n" and oct(key.stat().st_mode & 0o777) == "0o600"
    again = _cli("witness-keygen", "--name", "w.example", "--key", str(key), env={})
    assert again.returncode != 0 and "kept" in _one_line(again.stderr)
    assert load_witness_key(key, "w.example").verifier.vkey == signer.verifier.vkey  # never replaced
    shown = _cli("witness-vkey", "--name", "w.example", "--key", str(key), env={})
    assert shown.returncode == 0 and shown.stdout == signer.verifier.vkey + "\n", shown.stderr
    other = _cli("witness-vkey", "--name", "other.example", "--key", str(key), env={})
    assert other.returncode != 0 and other.stdout == ""
    assert "other.example" in _one_line(other.stderr) and "w.example" in other.stderr


def test_operator_errors_are_one_line(tmp_path: Path, db_url: str) -> None:
    nowhere = f"postgresql://postgres@127.0.0.1:{free_port()}/none"
    garbage = tmp_path / "garbage.key"
    garbage.write_text("not a key\n")
    other_origin = tmp_path / "other.key"
    other_origin.write_text(Signer.generate("other.example/log").skey + "\n")
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    data = tmp_path / "data"
    witness = ["witness", "--name", "w.example", "--key", str(tmp_path / "w.key"), "--state", str(tmp_path / "ws")]
    cases: list[tuple[list[str], dict[str, str], str]] = [
        (["serve"], {"ATLAS_ORIGIN": "has space"}, "ATLAS_ORIGIN"),
        (["serve"], {"ATLAS_PORT": "eighty"}, "ATLAS_PORT"),
        (["serve", "--workers", "0"], {}, "--workers"),
        (["serve"], {"ATLAS_DATABASE_URL": nowhere}, nowhere.split("@")[1].split("/")[0]),
        (["migrate"], {"ATLAS_DATABASE_URL": nowhere}, nowhere.split("@")[1].split("/")[0]),
        (["migrate"], {"ATLAS_DATABASE_URL": with_database(db_url, "atlas_no_such_db")}, "atlas_no_such_db"),
        (["migrate", "--revision", "9999"], {"ATLAS_DATABASE_URL": db_url}, "9999"),
        (["serve"], {"ATLAS_DATABASE_URL": db_url, "ATLAS_KEY_FILE": str(garbage)}, str(garbage)),
        (["serve"], {"ATLAS_DATABASE_URL": db_url, "ATLAS_KEY_FILE": str(other_origin)}, "other.example/log"),
        (["freeze", "--no-successor", "--yes"], {"ATLAS_DATABASE_URL": db_url}, "no checkpoint key"),
        (
            ["freeze", "--no-successor", "--yes"],
            {"ATLAS_DATABASE_URL": db_url, "ATLAS_KEY_FILE": str(garbage)},
            str(garbage),
        ),
        (["keygen", "--key-file", str(a_file / "log.key")], {}, str(a_file)),
        ([*witness, "--log", "not-a-vkey"], {}, "not-a-vkey"),
        (["witness-vkey", "--name", "w.example", "--key", str(tmp_path)], {}, str(tmp_path)),
        (["pcs-standin", "--folder", "nothing"], {}, "NAME=DIR"),
        (["pcs-standin", "--folder", f"x={tmp_path / 'missing'}"], {}, str(tmp_path / "missing")),
    ]
    for args, env, says in cases:
        out = _cli(*args, env={"ATLAS_DATA_DIR": str(data), **env})
        assert out.returncode != 0, (args, out.stdout, out.stderr)
        assert says in _one_line(out.stderr), (args, out.stderr)
        assert not (data / "log.key").exists() and not (tmp_path / "w.key").exists(), args  # nothing created


def test_serve_that_cannot_start_says_why_without_a_traceback(db_url: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    ServerProcess(db_url, data).stop()  # the database now holds a log signed by data/log.key
    (data / "log.key").rename(tmp_path / "log.key")  # lost (or ATLAS_DATA_DIR points elsewhere)
    for env, says in [
        ({}, "not signed by the key in"),
        ({"ATLAS_TDX_POLICY_FILE": str(tmp_path / "policy.json")}, str(tmp_path / "policy.json")),
    ]:
        if "ATLAS_TDX_POLICY_FILE" in env:
            (tmp_path / "log.key").replace(data / "log.key")
        out = _cli(
            "serve", "--port", str(free_port()), env={"ATLAS_DATABASE_URL": db_url, "ATLAS_DATA_DIR": str(data), **env}
        )
        assert out.returncode != 0 and "Traceback" not in out.stderr, out.stderr
        said = [json.loads(line) for line in out.stderr.splitlines() if says in line]
        assert len(said) == 1 and said[0]["level"] == "error" and "exception" not in said[0], out.stderr


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_on_a_busy_port_stops_before_doing_anything(tmp_path: Path, workers: str) -> None:
    data = tmp_path / "data"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # No database URL: a server that got past the port check would start an embedded PostgreSQL in data.
        cmd = [sys.executable, "-m", "atlas_log_server.cli", "serve", "--port", str(port), "--workers", workers]
        env = _env_without_database(ATLAS_DATA_DIR=str(data))
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    line = _one_line(out.stderr)
    assert f"port {port}" in line and "--port" in line and "ATLAS_PORT" in line, line
    assert "ATLAS_PORT=" in line and "make run" in line, line  # what make run can be given
    assert out.stdout == ""  # no banner
    assert not data.exists()  # no key, no database, nothing


def test_serve_listens_on_atlas_port(db_url: str, tmp_path: Path) -> None:
    """What `ATLAS_PORT=8081 make run` relies on: serve without --port takes the port from ATLAS_PORT."""
    port = free_port()
    env = {**os.environ, "ATLAS_DATABASE_URL": db_url, "ATLAS_DATA_DIR": str(tmp_path / "data")}
    env["ATLAS_PORT"] = str(port)
    proc = subprocess.Popen([sys.executable, "-m", "atlas_log_server.cli", "serve"], env=env, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise AssertionError(f"nothing answered on ATLAS_PORT {port}")
    finally:
        proc.terminate()
        proc.wait(20)


def test_serve_prints_no_library_chatter_and_stops_its_database(monkeypatch: pytest.MonkeyPatch) -> None:
    # As `make run` on a machine without a login session: no XDG_RUNTIME_DIR, a data folder of mode 0755.
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    data = Path(tempfile.mkdtemp(prefix="atlas-emb-"))  # short: the socket lives in the data folder
    data.chmod(0o755)
    # A server killed outright first: its embedded PostgreSQL runs on, orphaned, and the next server adopts it;
    # that one's stop must stop it (a dead process's handle on it must not keep it running for ever).
    crashed = ServerProcess(None, data, wait=120)
    crashed.proc.kill()
    crashed.proc.wait()
    crashed.stop()
    postmaster = int((data / "pgdata" / "postmaster.pid").read_text().split()[0])
    server = ServerProcess(None, data, wait=120)
    try:
        httpx.get(server.url + "/healthz")
        time.sleep(0.5)
    finally:
        server.stop()  # SIGTERM
        out = server.log_path.read_text()
        deadline = time.monotonic() + 30
        while (data / "pgdata" / "postmaster.pid").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        stopped_postgres = not (data / "pgdata" / "postmaster.pid").exists()
        if not stopped_postgres:  # never leave a server behind, whatever failed
            with contextlib.suppress(ProcessLookupError):
                os.kill(postmaster, signal.SIGTERM)
        shutil.rmtree(data, ignore_errors=True)
    assert server.proc.returncode == 0 and stopped_postgres, out  # a graceful stop, the adopted database's too
    banner = [line for line in out.splitlines() if line.startswith(("Atlas Log serving", "  "))]
    assert banner and banner[0].startswith("Atlas Log serving"), out
    logged = [json.loads(line) for line in out.splitlines() if line not in banner]  # nothing else but log lines
    # The server's own lines and uvicorn's: no embedded PostgreSQL commands, migrations, HTTP client lines.
    assert {str(x["logger"]).split(".")[0] for x in logged} <= {"atlas_log_server", "uvicorn"}, out
    # One server starts, on its own port: the local stand-ins (PCS, RIM, OCSP) say nothing of theirs.
    said = [str(x["message"]) for x in logged]
    assert said.count("Application startup complete.") == 1, out
    assert not any("Uvicorn running on" in m and server.url not in m for m in said), out


def test_a_test_server_whose_free_port_was_taken_meanwhile_starts_on_another(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The test harness's own race: a port found free can be taken by a parallel test before the server binds
    it; the server says so and the harness starts it on another port."""
    import tests.conftest as harness

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        ports = iter([taken.getsockname()[1], harness.free_port()])
        monkeypatch.setattr(harness, "free_port", lambda: next(ports))
        server = harness.ServerProcess(db_url, tmp_path / "data")
        try:
            assert server.port != taken.getsockname()[1]
            assert httpx.get(server.url + "/readyz").status_code == 200
        finally:
            server.stop()
