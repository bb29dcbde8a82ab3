"""Prometheus metrics at /metrics: admission outcomes, batches, tree size, collateral; across workers."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from prometheus_client.parser import text_string_to_metric_families

from atlas_log.testing.demo import demo_submission
from tests.conftest import ServerProcess


def samples(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = httpx.get(url + "/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def test_metrics_count_what_the_log_does(server: ServerProcess) -> None:
    body = demo_submission(Ed25519PrivateKey.generate(), 0, server.platform)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert http.post("/api/v1/entries", json=body).status_code == 201
        assert http.post("/api/v1/entries", json=body).status_code == 200
        assert http.post("/api/v1/entries", content=b"{").status_code == 400
    m = samples(server.url)
    assert m[("atlas_admissions_total", (("outcome", "logged"),))] == 1
    assert m[("atlas_admissions_total", (("outcome", "existing"),))] == 1
    assert m[("atlas_admissions_total", (("outcome", "invalid-json"),))] == 1
    assert m[("atlas_batch_entries_count", ())] >= 1
    assert m[("atlas_receipt_seconds_count", ())] == 2
    assert m[("atlas_tree_size", ())] == 1
    assert httpx.get(server.url + "/api/v1/proofs/inclusion", params={"index": 0, "treeSize": 1}).status_code == 200
    assert samples(server.url)[("atlas_tile_cache_tiles", ())] >= 1
    expiry = [v for (name, _), v in m.items() if name == "atlas_collateral_expiry_seconds"]
    assert expiry and all(v > 0 for v in expiry)


@pytest.mark.timeout(180)
def test_metrics_add_up_across_workers(db_url: str, tmp_path: Path) -> None:
    server = ServerProcess(db_url, tmp_path / "data", env={"ATLAS_ALLOW_UNATTESTED": "true"}, args=["--workers", "2"])
    try:
        key = Ed25519PrivateKey.generate()
        for i in range(20):  # a new connection each time: the kernel spreads them over both workers
            assert httpx.post(server.url + "/api/v1/entries", json=demo_submission(key, i)).status_code == 201
        for _ in range(4):  # whichever worker answers the scrape reports every worker's counts
            assert samples(server.url)[("atlas_admissions_total", (("outcome", "logged"),))] == 20
    finally:
        server.stop()
    # Started on a log with entries, each worker fills its tile cache at once and says so.
    server = ServerProcess(db_url, tmp_path / "data", env={"ATLAS_ALLOW_UNATTESTED": "true"}, args=["--workers", "2"])
    try:
        deadline = time.monotonic() + 30
        while (cached := _per_worker(server.url, "atlas_tile_cache_tiles")) != [1, 1]:
            assert time.monotonic() < deadline, cached
            time.sleep(0.1)
        # A worker that dies is restarted, and only the living are reported.
        workers = _worker_pids(server.url)
        os.kill(int(workers[0]), signal.SIGKILL)
        deadline = time.monotonic() + 30
        while workers[0] in (pids := _worker_pids(server.url)) or len(pids) != 2:
            assert time.monotonic() < deadline, pids
            time.sleep(0.2)
    finally:
        server.stop()


def _worker_pids(url: str) -> list[str]:
    try:
        return sorted(dict(labels)["pid"] for (n, labels), _ in samples(url).items() if n == "atlas_tile_cache_tiles")
    except httpx.TransportError:  # the killed worker's connection
        return []


def _per_worker(url: str, name: str) -> list[float]:
    return sorted(v for (n, labels), v in samples(url).items() if n == name and dict(labels).get("pid"))
