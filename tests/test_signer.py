"""Checkpoint keys from an external signer process (the HSM/KMS interface) instead of a key file."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from atlas_log.note import Signer
from atlas_log.receipt import verify_receipt
from atlas_log.submission import demo_submission
from atlas_log_server.config import Settings
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
