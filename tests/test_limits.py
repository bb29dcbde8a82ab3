"""Request limits over a real server: a body sent too slowly gets 408 in time; JSON nested too deep and lists
longer than allowed get clear 400s."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from atlas_log.submission import demo_submission
from tests.conftest import ServerProcess


@pytest.fixture
def impatient(db_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    s = ServerProcess(db_url, tmp_path / "data", env={"ATLAS_BODY_TIMEOUT_S": "1"})
    yield s
    s.stop()


def test_a_slow_body_is_cut_off_with_408(impatient: ServerProcess) -> None:
    with socket.create_connection(("127.0.0.1", impatient.port), timeout=10) as sock:
        sock.sendall(
            b"POST /api/v1/entries HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n" + b'{"dsseEnvelope":'
        )
        started = time.monotonic()
        data = b""
        while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        waited = time.monotonic() - started
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), head
    assert json.loads(body)["type"].endswith("/request-timeout")
    assert 0.8 <= waited < 5


def test_deep_or_wide_json_is_a_clear_400(impatient: ServerProcess) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    r = httpx.post(impatient.url + "/api/v1/entries", content=deep, timeout=30)
    assert r.status_code == 400 and r.json()["type"].endswith("/invalid-json")
    body = demo_submission(Ed25519PrivateKey.generate(), 0)
    keys = body["verificationMaterial"]["publicKeys"] * 17  # more keys than a submission may list
    r = httpx.post(impatient.url + "/api/v1/entries", json={**body, "verificationMaterial": {"publicKeys": keys}})
    assert r.status_code == 400 and "1..16" in r.json()["detail"]
