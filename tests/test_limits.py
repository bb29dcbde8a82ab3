"""Request limits over a real server: a body sent too slowly gets 408 in time; JSON nested too deep and lists
longer than allowed get clear 400s."""

from __future__ import annotations

import base64
import json
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from atlas_log.dsse import pae
from atlas_log.submission import MAX_KEYS
from atlas_log.testing.demo import demo_submission
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
    keys = body["verificationMaterial"]["publicKeys"] * (MAX_KEYS + 1)  # more keys than a submission may list
    r = httpx.post(impatient.url + "/api/v1/entries", json={**body, "verificationMaterial": {"publicKeys": keys}})
    assert r.status_code == 400 and f"1..{MAX_KEYS}" in r.json()["detail"]


def _spki_b64(key: rsa.RSAPublicKey) -> str:
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


def _crafted() -> dict[str, Any]:
    """18 KB: one real RSA-2048 signature repeated 16 times, and 16 keys of which the first 15 are "keys"
    whose public exponent is as long as their modulus (no factorisation is needed to make one), so that
    checking a signature with one costs as much as an RSA private-key operation. Trying every signature
    against every key with both paddings is 480 such operations before the real key is reached."""
    real = rsa.generate_private_key(65537, 2048)
    body = demo_submission(Ed25519PrivateKey.generate(), 0)
    env = body["dsseEnvelope"]
    sig = real.sign(pae(env["payloadType"], base64.b64decode(env["payload"])), padding.PKCS1v15(), hashes.SHA256())
    env["signatures"] = [{"sig": base64.b64encode(sig).decode()}] * 16
    costly = []
    for _ in range(15):
        n = (1 << 2048) - 1 - 2 * secrets.randbits(64)  # above any 2048-bit signature: the work is done in full
        costly.append(rsa.RSAPublicNumbers(secrets.randbits(2040) | (1 << 2039) | 1, n).public_key())
    body["verificationMaterial"] = {"publicKeys": [{"spki": _spki_b64(k)} for k in [*costly, real.public_key()]]}
    return body


@pytest.mark.timeout(120)
def test_a_crafted_submission_costs_little_and_reads_stay_fast(impatient: ServerProcess) -> None:
    """Every signature against every key with both RSA paddings, with exponents as long as the modulus, is
    seconds of CPU from an 18 KB body. It must be refused before that work, and a reader of the checkpoint
    must not wait for it."""
    crafted = _crafted()
    assert 17_000 < len(json.dumps(crafted)) < 19_000
    latencies: list[float] = []
    stop = threading.Event()

    def read() -> None:
        with httpx.Client(base_url=impatient.url, timeout=30) as http:
            while not stop.is_set():
                started = time.perf_counter()
                assert http.get("/checkpoint").status_code == 200
                latencies.append(time.perf_counter() - started)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        with httpx.Client(base_url=impatient.url, timeout=60) as http:
            answers = []
            for _ in range(3):
                started = time.perf_counter()
                r = http.post("/api/v1/entries", json=crafted)
                answers.append((time.perf_counter() - started, r.status_code, r.text[:200]))
    finally:
        stop.set()
        reader.join()
    slowest = max(answers)
    read = max(latencies, default=0.0)
    assert all(400 <= status < 500 for _, status, _ in answers), answers
    assert slowest[0] < 0.5 and read < 0.25, f"submission answered in {slowest}, GET /checkpoint in up to {read:.2f} s"
