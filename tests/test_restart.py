"""A pipeline survives the log restarting under it: the log process is killed (SIGKILL) mid-run and started
again on the same port and database; `atlas-log demo` and a `record_step` loop finish, and every receipt they
saved verifies and is in the final tree."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from atlas_log._encoding import b64decode
from atlas_log.checkpoint import open_checkpoint
from atlas_log.client import LogClient
from atlas_log.merkle import verify_consistency
from atlas_log.note import Verifier
from atlas_log.pipeline import record_step
from atlas_log.receipt import Receipt, verify_receipt
from atlas_log.submission import intoto_statement
from atlas_log.testing.simulate import SimulatedProvider
from tests.conftest import ServerProcess


def _kill_and_restart(
    server: ServerProcess, db_url: str, saved: Path, pause: Callable[[], None], resume: Callable[[], None]
) -> ServerProcess:
    """Wait until receipts are being saved, hold the pipeline, SIGKILL the log once no batch is between its
    signature and its commit, let the pipeline meet the log down, and start the log again on its port.

    The log is killed between batches because a crash inside that window leaves it refusing writes by design
    (it cannot tell a batch that never committed from one a restored database lost; see
    ``last_signed``), which is the server's property, tested there; this test is about the client."""
    deadline = time.monotonic() + 120
    while len(list(saved.glob("*.json"))) < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    pause()
    record = server.data_dir / "log.key.last-signed"
    while time.monotonic() < deadline:
        state = json.loads(record.read_text())
        if state.get("signed") == state.get("committed"):
            break
        time.sleep(0.01)
    server.proc.kill()
    server.proc.wait()
    server._log.close()
    resume()
    time.sleep(1)  # the pipeline meets a log that is down, not only a broken connection
    return ServerProcess(db_url, server.data_dir, port=server.port)


def _all_verify(receipts: list[Path], url: str, vkey: str) -> int:
    """Every saved receipt verifies and is consistent with the final checkpoint; returns how many."""
    verifier = Verifier.from_vkey(vkey)
    final = open_checkpoint(httpx.get(url + "/checkpoint").content, verifier)
    indices = set()
    for path in receipts:
        receipt = Receipt.from_json(json.loads(path.read_text()))
        cp = verify_receipt(receipt, verifier)
        hashes = httpx.get(url + "/api/v1/proofs/consistency", params={"from": cp.size, "to": final.size}).json()
        verify_consistency(cp.size, final.size, [b64decode(h) for h in hashes["hashes"]], cp.root_hash, final.root_hash)
        indices.add(receipt.log_index)
    assert len(indices) == len(receipts) <= final.size
    return len(receipts)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_demo_survives_a_log_restart(db_url: str, tmp_path: Path) -> None:
    server = ServerProcess(db_url, tmp_path / "data")
    vkey = server.vkey
    saved = tmp_path / "receipts"
    count = 200
    argv = ["--server", server.url, "--vkey", vkey, "demo", "--count", str(count), "--concurrency", "4"]
    argv += ["--receipts", str(saved), "--simulated-platform", str(server.data_dir / "simulated-tdx")]
    demo = subprocess.Popen(
        [sys.executable, "-m", "atlas_log.cli", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        server = _kill_and_restart(
            server,
            db_url,
            saved,
            lambda: os.kill(demo.pid, signal.SIGSTOP),
            lambda: os.kill(demo.pid, signal.SIGCONT),
        )
        _, err = demo.communicate(timeout=240)
        assert demo.returncode == 0, err
        assert _all_verify(sorted(saved.glob("*.json")), server.url, vkey) == count
    finally:
        if demo.poll() is None:
            demo.kill()
        server.stop()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_record_step_survives_a_log_restart(db_url: str, tmp_path: Path) -> None:
    server = ServerProcess(db_url, tmp_path / "data")
    vkey, provider = server.vkey, SimulatedProvider(server.platform)
    saved = tmp_path / "receipts"
    key = Ed25519PrivateKey.generate()
    steps = 60
    failures: list[BaseException] = []
    going = threading.Event()
    going.set()

    def pipeline() -> None:
        try:
            with httpx.Client(base_url=server.url, timeout=30) as http:
                client = LogClient(http, vkey)
                for n in range(steps):
                    going.wait()
                    statement = intoto_statement([("model", f"{n:064x}")], "https://atlas-log.dev/test/v1", {})
                    record_step(client, key, statement, provider, receipt_path=saved / f"step-{n:03d}.json")
        except BaseException as exc:  # reported by the test thread
            failures.append(exc)

    worker = threading.Thread(target=pipeline)
    worker.start()
    try:
        server = _kill_and_restart(server, db_url, saved, going.clear, going.set)
        worker.join(240)
        assert not worker.is_alive() and not failures, failures
        assert _all_verify(sorted(saved.glob("*.json")), server.url, vkey) == steps
    finally:
        worker.join(1)
        server.stop()
