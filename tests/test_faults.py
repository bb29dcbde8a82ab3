"""Faults: the database goes away under load and comes back; a backup taken under load restores."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from atlas_log._encoding import b64decode
from atlas_log.checkpoint import open_checkpoint
from atlas_log.merkle import verify_consistency
from atlas_log.note import Verifier
from atlas_log.receipt import verify_receipt
from atlas_log.testing.demo import demo_submission
from atlas_log_server.db import migrate
from tests.conftest import ServerProcess
from tests.pgcluster import BIN, Cluster


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    c = Cluster()
    c.start()
    yield c
    c.remove()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_database_restart_under_load(cluster: Cluster, tmp_path: Path) -> None:
    migrate.upgrade(cluster.url)
    server = ServerProcess(cluster.url, tmp_path / "data", env={"ATLAS_ALLOW_UNATTESTED": "true"})
    outcomes: list[tuple[float, float, int, dict[str, Any], dict[str, str]]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client() -> None:
        key = Ed25519PrivateKey.generate()
        n = 0
        with httpx.Client(base_url=server.url, timeout=60) as http:
            body = demo_submission(key, n)
            while not stop.is_set():
                t0 = time.monotonic()
                r = http.post("/api/v1/entries", json=body)
                with lock:
                    outcomes.append((t0, time.monotonic() - t0, r.status_code, r.json(), dict(r.headers)))
                if r.status_code in (200, 201):
                    n += 1
                    body = demo_submission(key, n)
                else:
                    time.sleep(0.05)  # the same entry again, as a client honouring Retry-After would

    threads = [threading.Thread(target=client) for _ in range(8)]
    try:
        for t in threads:
            t.start()
        time.sleep(2)
        down_at = time.monotonic()
        cluster.stop()
        time.sleep(3)
        cluster.start()
        up_at = time.monotonic()
        time.sleep(5)
    finally:
        stop.set()
        for t in threads:
            t.join()

    statuses = {s for _, _, s, _, _ in outcomes}
    assert statuses <= {200, 201, 503}, statuses
    unavailable = [(body, headers) for _, _, s, body, headers in outcomes if s == 503]
    assert unavailable, "no submission met the outage"
    for body, headers in unavailable:
        assert body["type"].endswith(("/database-unavailable", "/not-ready")), body
        assert int(headers["retry-after"]) > 0
        assert "Traceback" not in body["detail"] and "asyncpg" not in body["detail"]
    assert max(elapsed for _, elapsed, _, _, _ in outcomes) < 15, "a request hung"
    assert any(s == 201 and t0 > up_at for t0, _, s, _, _ in outcomes), "the log did not recover by itself"
    assert any(s == 201 and t0 < down_at for t0, _, s, _, _ in outcomes)

    # Nothing acknowledged is lost: every receipt is in the final tree.
    verifier = Verifier.from_vkey(server.vkey)
    final = open_checkpoint(httpx.get(server.url + "/checkpoint").content, verifier)
    receipts = [body for _, _, s, body, _ in outcomes if s in (200, 201)]
    proofs: dict[int, list[bytes]] = {}
    for receipt in receipts:
        cp = verify_receipt(receipt, verifier)
        if cp.size < final.size:
            if cp.size not in proofs:
                hashes = httpx.get(
                    server.url + "/api/v1/proofs/consistency", params={"from": cp.size, "to": final.size}
                ).json()["hashes"]
                proofs[cp.size] = [b64decode(h, "h") for h in hashes]
            verify_consistency(cp.size, final.size, proofs[cp.size], cp.root_hash, final.root_hash)
    assert len({r["logIndex"] for r in receipts}) == len(receipts) <= final.size
    server.stop()
    print(f"{len(receipts)} receipts, {len(unavailable)} answers 503 during the outage, final size {final.size}")


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_backup_taken_under_load_restores_a_consistent_log(cluster: Cluster, tmp_path: Path) -> None:
    """The operator procedure of the README: ``pg_dump -Fc`` while the log runs, ``pg_restore`` into a fresh
    database, start a server on it."""
    migrate.upgrade(cluster.url)
    server = ServerProcess(cluster.url, tmp_path / "data", env={"ATLAS_ALLOW_UNATTESTED": "true"})
    verifier = Verifier.from_vkey(server.vkey)
    stop = threading.Event()

    def load() -> None:
        key = Ed25519PrivateKey.generate()
        n = 0
        with httpx.Client(base_url=server.url, timeout=60) as http:
            while not stop.is_set():
                assert http.post("/api/v1/entries", json=demo_submission(key, n)).status_code == 201
                n += 1

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(2)
        before = httpx.get(server.url + "/checkpoint").content  # the last checkpoint served before the dump
        dump = tmp_path / "log.dump"
        subprocess.run([BIN / "pg_dump", "-Fc", "-f", dump, cluster.url], check=True, capture_output=True)
        time.sleep(1)
    finally:
        stop.set()
        for t in threads:
            t.join()
    last = open_checkpoint(httpx.get(server.url + "/checkpoint").content, verifier)  # signed after the dump
    server.stop()

    restored_url = cluster.url.rsplit("/", 1)[0] + "/restored"
    subprocess.run(
        [BIN / "createdb", "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres", "restored"], check=True
    )
    subprocess.run([BIN / "pg_restore", "--exit-on-error", "-d", restored_url, dump], check=True, capture_output=True)
    # The same key (data folder) serves the restored database: it serves what it holds, consistently, but
    # it signs nothing new, since the log already signed larger trees (after the dump) than the restored one.
    restored = ServerProcess(restored_url, tmp_path / "data", env={"ATLAS_ALLOW_UNATTESTED": "true"})
    try:
        old = open_checkpoint(before, verifier)
        with httpx.Client(base_url=restored.url, timeout=30) as http:
            now = open_checkpoint(http.get("/checkpoint").content, verifier)
            assert last.size > now.size >= old.size > 0
            hashes = http.get("/api/v1/proofs/consistency", params={"from": old.size, "to": now.size}).json()["hashes"]
            verify_consistency(old.size, now.size, [b64decode(h, "h") for h in hashes], old.root_hash, now.root_hash)
            r = http.post("/api/v1/entries", json=demo_submission(Ed25519PrivateKey.generate(), 0))
            assert r.status_code == 503 and r.json()["type"].endswith("/signing-refused"), r.text
            assert f"already signed a tree of size {last.size}" in r.json()["detail"]
    finally:
        restored.stop()
