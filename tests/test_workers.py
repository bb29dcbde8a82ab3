"""Several server processes on one address: socket binding, restart of a dead worker, shutdown."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from atlas_log.testing.demo import demo_submission
from atlas_log_server.workers import bind_sockets
from tests.conftest import ServerProcess


def test_sockets_share_one_port() -> None:
    sockets = bind_sockets("127.0.0.1", 0, 3)
    try:
        ports = {s.getsockname()[1] for s in sockets}
        assert len(sockets) == 3 and len(ports) == 1
        with socket.create_connection(("127.0.0.1", ports.pop()), timeout=2):
            pass  # one of the three accepts it
    finally:
        for s in sockets:
            s.close()


def test_a_taken_address_is_refused() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError):
            bind_sockets("127.0.0.1", taken.getsockname()[1], 2)
    # A second group on a port some group already holds is refused as well.
    first = bind_sockets("127.0.0.1", 0, 2)
    try:
        with pytest.raises(OSError):
            bind_sockets("127.0.0.1", first[0].getsockname()[1], 2)
    finally:
        for s in first:
            s.close()


def _children(pid: int) -> set[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return {int(p) for p in path.read_text().split()} if path.exists() else set()


def _workers(pid: int) -> set[int]:
    """Worker processes: children running the app (not multiprocessing's resource tracker)."""
    return {c for c in _children(pid) if b"resource_tracker" not in Path(f"/proc/{c}/cmdline").read_bytes()}


def _wait(predicate: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")


@pytest.mark.timeout(180)
def test_workers_serve_restart_and_stop(db_url: str, tmp_path: Path) -> None:
    server = ServerProcess(db_url, tmp_path / "data", env={"ATLAS_ALLOW_UNATTESTED": "true"}, args=["--workers", "2"])
    try:
        _wait(lambda: len(_workers(server.proc.pid)) == 2)
        workers = _workers(server.proc.pid)
        key = Ed25519PrivateKey.generate()
        with httpx.Client(base_url=server.url, timeout=30) as http:
            assert http.post("/api/v1/entries", json=demo_submission(key, 0)).status_code == 201
            victim = min(workers)
            os.kill(victim, signal.SIGKILL)
            # The supervisor replaces the dead worker; the address keeps answering meanwhile.
            _wait(lambda: len(_workers(server.proc.pid)) == 2 and victim not in _workers(server.proc.pid))
            _wait(lambda: all(httpx.get(server.url + "/readyz").status_code == 200 for _ in range(8)))
            assert http.post("/api/v1/entries", json=demo_submission(key, 1)).status_code == 201
        current = _workers(server.proc.pid)
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(30) == 0
        for pid in current:
            assert not Path(f"/proc/{pid}").exists() or b"zombie" in Path(f"/proc/{pid}/status").read_bytes()
    finally:
        server.stop()
