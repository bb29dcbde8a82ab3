"""Checkpoint keys from an external signer process (the HSM/KMS interface) instead of a key file."""

from __future__ import annotations

import shlex
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from atlas_log.note import Signer
from atlas_log.receipt import verify_receipt
from atlas_log.testing.demo import demo_submission
from atlas_log_server.config import Settings
from atlas_log_server.log.signer import CommandSigner, SignerUnavailable
from tests.conftest import ServerProcess

ORIGIN = "atlas-log.localhost/dev"

# Stands in for an HSM adapter: holds the key outside the log server and speaks the line protocol.
SIGNER = """
import base64, sys
from atlas_log.note import Signer
signer = Signer.from_skey(open(sys.argv[1]).read().strip())
for line in sys.stdin:
    text = base64.b64decode(line.strip()).decode()
    print(base64.b64encode(signer.sign(text).signature).decode(), flush=True)
"""


def _signer(tmp_path: Path, signer: Signer) -> str:
    (tmp_path / "hsm.key").write_text(signer.skey)
    (tmp_path / "hsm.py").write_text(SIGNER)
    return f"{sys.executable} {tmp_path / 'hsm.py'} {tmp_path / 'hsm.key'}"


def test_the_log_signs_through_an_external_signer(db_url: str, tmp_path: Path) -> None:
    hsm = Signer.generate(ORIGIN)
    env = {
        "ATLAS_ALLOW_UNATTESTED": "true",
        "ATLAS_SIGNER_COMMAND": _signer(tmp_path, hsm),
        "ATLAS_SIGNER_VKEY": hsm.verifier.vkey,
    }
    server = ServerProcess(db_url, tmp_path / "data", env=env)
    try:
        assert server.vkey == hsm.verifier.vkey
        r = httpx.post(server.url + "/api/v1/entries", json=demo_submission(Ed25519PrivateKey.generate(), 0))
        assert r.status_code == 201
        verify_receipt(r.json(), hsm.verifier.vkey)
        assert not (tmp_path / "data" / "log.key").exists()  # no key was created on the server's disk
    finally:
        server.stop()


def test_a_signer_with_another_key_is_refused(db_url: str, tmp_path: Path) -> None:
    env = {
        "ATLAS_SIGNER_COMMAND": _signer(tmp_path, Signer.generate(ORIGIN)),  # not the key named below
        "ATLAS_SIGNER_VKEY": Signer.generate(ORIGIN).verifier.vkey,
    }
    with pytest.raises(RuntimeError, match="does not verify with the configured key"):
        ServerProcess(db_url, tmp_path / "data", env=env, wait=30)


def test_signer_settings_go_together() -> None:
    with pytest.raises(ValueError, match="go together"):
        Settings(signer_command="x")


# An HSM adapter that can be made to hang (never answer) or die, by creating a file next to it.
FLAKY_SIGNER = """
import base64, os, sys, time
from atlas_log.note import Signer
signer = Signer.from_skey(open(sys.argv[1]).read().strip())
for line in sys.stdin:
    if os.path.exists(sys.argv[1] + ".hang"):
        time.sleep(3600)
    if os.path.exists(sys.argv[1] + ".die"):
        sys.exit(3)
    text = base64.b64decode(line.strip()).decode()
    print(base64.b64encode(signer.sign(text).signature).decode(), flush=True)
"""


def test_a_hung_or_dead_signer_is_a_503_and_reads_keep_working(db_url: str, tmp_path: Path) -> None:
    hsm = Signer.generate(ORIGIN)
    (tmp_path / "hsm.key").write_text(hsm.skey)
    (tmp_path / "hsm.py").write_text(FLAKY_SIGNER)
    env = {
        "ATLAS_ALLOW_UNATTESTED": "true",
        "ATLAS_SIGNER_COMMAND": f"{sys.executable} {tmp_path / 'hsm.py'} {tmp_path / 'hsm.key'}",
        "ATLAS_SIGNER_VKEY": hsm.verifier.vkey,
        "ATLAS_SIGNER_TIMEOUT_S": "2",
    }
    server = ServerProcess(db_url, tmp_path / "data", env=env)
    key = Ed25519PrivateKey.generate()

    def submit(n: int) -> httpx.Response:
        return httpx.post(server.url + "/api/v1/entries", json=demo_submission(key, n), timeout=30)

    try:
        assert submit(0).status_code == 201
        for flag in ("hang", "die"):
            (tmp_path / f"hsm.key.{flag}").touch()
            with ThreadPoolExecutor(1) as pool:
                started = time.monotonic()
                pending = pool.submit(submit, 1)
                time.sleep(0.5)
                for path in ("/checkpoint", "/api/v1/entries/0", "/api/v1/log"):  # reads do not wait for it
                    t = time.monotonic()
                    assert httpx.get(server.url + path, timeout=5).status_code == 200
                    assert time.monotonic() - t < 1, path
                r = pending.result()
            assert time.monotonic() - started < 5  # the 2 s timeout, not forever
            assert r.status_code == 503, r.text
            assert r.json()["type"].endswith("/signer-unavailable") and "Retry-After" in r.headers
            (tmp_path / f"hsm.key.{flag}").unlink()
            r = submit(1)  # the signer is restarted for the next checkpoint
            assert r.status_code in (200, 201), r.text
            verify_receipt(r.json(), hsm.verifier.vkey)
    finally:
        server.stop()
    # A server (re)started while its signer hangs serves reads, and writes once the signer answers.
    (tmp_path / "hsm.key.hang").touch()
    server = ServerProcess(db_url, tmp_path / "data", env=env)
    try:
        assert httpx.get(server.url + "/checkpoint", timeout=5).status_code == 200
        r = submit(2)
        assert r.status_code == 503 and r.json()["type"].endswith("/signer-unavailable"), r.text
        (tmp_path / "hsm.key.hang").unlink()
        assert submit(2).status_code == 201
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("program", "says"),
    [
        ("import time; time.sleep(60)", "did not answer within 0.5 s"),
        ("import sys; sys.exit(3)", "exited|not running"),
        ("import sys; sys.stdin.readline(); print('AAAA\\nAAAA', flush=True); sys.stdin.readline()", "more than one"),
    ],
    ids=["hung", "dead", "out-of-step"],
)
def test_the_external_signer_timeout_is_enforced(program: str, says: str) -> None:
    signer = CommandSigner(f"{sys.executable} -c {shlex.quote(program)}", Signer.generate(ORIGIN).verifier, 0.5)
    try:
        for _ in range(2):  # and again after the restart
            started = time.monotonic()
            with pytest.raises(SignerUnavailable, match=says):
                signer.sign("text\n")
            assert time.monotonic() - started < 2
    finally:
        signer.close()
