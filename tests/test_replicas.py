"""Read replicas (a real streaming standby made with pg_basebackup -R): reads go to the replica and writes to
the primary; a replica whose replay is paused answers consistently with the checkpoint it holds and sends what
it does not hold yet to the primary, saying so; a stopped replica is taken out of rotation without a failed
read."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from atlas_log.checkpoint import open_checkpoint
from atlas_log.client import LogClient
from atlas_log.note import Verifier
from atlas_log.receipt import Receipt
from atlas_log.testing.demo import demo_submission
from atlas_log_server.db import migrate
from tests.conftest import ServerProcess
from tests.pgcluster import Cluster


@pytest.fixture
def clusters() -> Iterator[tuple[Cluster, Cluster]]:
    primary = Cluster()
    primary.start()
    migrate.upgrade(primary.url)
    standby = Cluster(standby_of=primary)
    standby.start()
    yield primary, standby
    standby.remove()
    primary.remove()


def _sql(url: str, query: str) -> object:
    async def run() -> object:
        conn = await asyncpg.connect(url)
        try:
            return await conn.fetchval(query)
        finally:
            await conn.close()

    return asyncio.run(run())


def _caught_up(primary: Cluster, standby: Cluster) -> None:
    want = _sql(primary.url, "SELECT pg_current_wal_lsn()::text")
    deadline = time.monotonic() + 30
    while _sql(standby.url, f"SELECT pg_last_wal_replay_lsn() >= '{want}'::pg_lsn") is not True:
        assert time.monotonic() < deadline, "the standby did not catch up"
        time.sleep(0.1)


@pytest.mark.timeout(300)
def test_reads_go_to_a_streaming_replica_and_fall_back(clusters: tuple[Cluster, Cluster], tmp_path: Path) -> None:
    primary, standby = clusters
    assert _sql(standby.url, "SELECT pg_is_in_recovery()") is True
    server = ServerProcess(
        primary.url,
        tmp_path / "data",
        env={"ATLAS_READ_DATABASE_URLS": json.dumps([standby.url]), "ATLAS_MIGRATE_ON_START": "false"},
    )
    key = Ed25519PrivateKey.generate()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            receipts = []
            for n in range(5):
                r = http.post("/api/v1/entries", json=demo_submission(key, n, server.platform))
                assert r.status_code == 201, r.text  # writes go to the primary (the standby refuses them)
                receipts.append(Receipt.from_json(r.json()))
            _caught_up(primary, standby)
            # Reads come from the replica, whole answers from one snapshot.
            cp = http.get("/checkpoint")
            assert cp.headers["x-atlas-read"] == "replica" and b"\n5\n" in cp.content
            entry = http.get("/api/v1/entries/4")
            assert entry.status_code == 200 and entry.headers["x-atlas-read"] == "replica"
            with LogClient(http, server.vkey) as client:
                assert client.verify_receipt_current(receipts[0]).size == 5
            # Replay paused: the replica holds size 5 while the primary grows to 8.
            _sql(standby.url, "SELECT pg_wal_replay_pause()")
            for n in range(5, 8):
                assert http.post("/api/v1/entries", json=demo_submission(key, n, server.platform)).status_code == 201
            lagging = http.get("/checkpoint")
            assert lagging.headers["x-atlas-read"] == "replica"
            old = open_checkpoint(lagging.content, Verifier.from_vkey(server.vkey))
            assert old.size == 5  # consistent with what the replica holds, never a size it lacks
            proof = http.get("/api/v1/proofs/inclusion", params={"index": 1, "treeSize": 5}).json()
            assert proof["treeSize"] == 5
            # What it does not hold yet comes from the primary, which says why.
            newer = http.get("/api/v1/entries/7")
            assert newer.status_code == 200 and newer.headers["x-atlas-read"].startswith("primary; the replica")
            beyond = http.get("/api/v1/proofs/inclusion", params={"index": 6, "treeSize": 8})
            assert beyond.status_code == 200 and beyond.headers["x-atlas-read"].startswith("primary")
            _sql(standby.url, "SELECT pg_wal_replay_resume()")
            _caught_up(primary, standby)
            # The replica stops: reads keep working from the primary, none fails.
            standby.stop("immediate")
            statuses = {http.get(path).status_code for path in ("/checkpoint", "/api/v1/entries/7", "/tile/0/000.p/8")}
            assert statuses == {200}
            assert http.get("/api/v1/entries/2").headers["x-atlas-read"].startswith("primary")
        assert "read replica" in server.log_path.read_text()
    finally:
        server.stop()
