"""Shared by the benchmarks: which PostgreSQL, a fresh migrated database, server processes, results."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx

from atlas_log._encoding import b64decode
from atlas_log.checkpoint import Checkpoint, open_checkpoint
from atlas_log.merkle import verify_consistency
from atlas_log.note import Verifier
from atlas_log.receipt import verify_receipt
from atlas_log_server.db import migrate

ROOT = Path(__file__).resolve().parent.parent


def poll_checkpoints(url: Callable[[], str], stop: threading.Event, notes: list[bytes], lock: threading.Lock) -> None:
    """Until ``stop`` is set: the checkpoint served at ``url()`` every 50 ms, each kept in ``notes`` (a fault run
    checks every one it saw against the final tree); a server that does not answer is asked again."""
    with httpx.Client(timeout=5) as http:
        while not stop.is_set():
            try:
                r = http.get(url() + "/checkpoint")
                if r.status_code == 200:
                    with lock:
                        notes.append(r.content)
            except httpx.HTTPError:
                pass
            time.sleep(0.05)


RESULTS = ROOT / "bench" / "results"


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpu": cpu, "python": platform.python_version(), "platform": platform.platform()}


def server_url() -> str:
    """ATLAS_BENCH_DATABASE_URL, else the local PostgreSQL on 127.0.0.1:5432 if it answers, else embedded."""
    url = os.environ.get("ATLAS_BENCH_DATABASE_URL") or os.environ.get("ATLAS_TEST_DATABASE_URL")
    if url:
        return url
    local = "postgresql://postgres@127.0.0.1:5432/postgres"
    try:
        asyncio.run(asyncio.wait_for(_ping(local), 2))
        return local
    except Exception:  # any failure means "not there"
        from atlas_log_server.db.embedded import EmbeddedPostgres

        return EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="atlas-bench-"))).start()


async def _ping(url: str) -> None:
    conn = await asyncpg.connect(url)
    await conn.close()


def with_database(url: str, name: str) -> str:
    p = urlsplit(url)
    return urlunsplit((p.scheme, p.netloc, "/" + name, p.query, p.fragment))


def fresh_database(name: str) -> str:
    base = server_url()

    async def create() -> None:
        conn = await asyncpg.connect(base)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
        await conn.close()

    asyncio.run(create())
    url = with_database(base, name)
    migrate.upgrade(url)
    return url


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """An ``atlas-log-server serve`` process on a port of its own; :meth:`kill` and :meth:`start` restart it
    on the same port (fault runs)."""

    def __init__(self, db_url: str, data_dir: Path, workers: int = 1, log: Path | None = None, **env: str) -> None:
        self.log = log  # where its log lines go (default: this process's stderr)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        data_dir.mkdir(parents=True, exist_ok=True)
        self.args = [
            sys.executable,
            "-m",
            "atlas_log_server.cli",
            "serve",
            "--port",
            str(self.port),
            "--log-level",
            "warning",
            "--workers",
            str(workers),
        ]
        self.env = {**os.environ, "ATLAS_DATABASE_URL": db_url, "ATLAS_DATA_DIR": str(data_dir), **env}
        self.start()

    def start(self) -> float:
        """Start the process and wait until it is ready; returns the seconds that took."""
        started = time.monotonic()
        stderr = self.log.open("ab") if self.log is not None else None
        self.proc = subprocess.Popen(self.args, env=self.env, stdout=subprocess.DEVNULL, stderr=stderr)
        if stderr is not None:
            stderr.close()  # the child holds its own descriptor
        while time.monotonic() - started < 60:
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError(f"server on port {self.port} did not start")

    def kill(self) -> None:
        """SIGKILL: no shutdown of any kind."""
        self.proc.kill()
        self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(20)


def loadgen(url: str, requests_file: Path, concurrency: int, duration: float, warmup: int = 0) -> dict[str, Any]:
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "loadgen.py"),
            "--url",
            url,
            "--requests",
            str(requests_file),
            "--concurrency",
            str(concurrency),
            "--duration",
            str(duration),
            "--warmup",
            str(warmup),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


Run = dict[str, float]


def write_submissions(path: Path, bodies: Iterable[dict[str, Any]]) -> Path:
    """A :func:`loadgen` request file POSTing each submission body to ``/api/v1/entries``."""
    with path.open("w") as f:
        for body in bodies:
            f.write(json.dumps({"method": "POST", "path": "/api/v1/entries", "body": body}) + "\n")
    return path


def alternating(rounds: int, names: tuple[str, str], run: Callable[[str], Run]) -> dict[str, list[Run]]:
    """``run`` each of two variants once per round, the order swapped every round (so a drift of the machine
    during a round does not favour one), printing each result; returns the runs by variant."""
    runs: dict[str, list[Run]] = {n: [] for n in names}
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            runs[name].append(run(name))
            print(f"round {r + 1} {name}: {runs[name][-1]}", flush=True)
    return runs


def medians(runs: dict[str, list[Run]]) -> dict[str, Run]:
    """Each variant's median of each measure."""
    return {n: {f: statistics.median(x[f] for x in rs) for f in rs[0]} for n, rs in runs.items()}


def admission_run(result: dict[str, Any]) -> Run:
    """The measures of one admission run from :func:`loadgen`'s result."""
    return {
        "entries_per_s": result["rps"],
        "p50_ms": result["latency_ms"]["p50"],
        "p99_ms": result["latency_ms"]["p99"],
    }


async def _entry_rows(db_url: str) -> dict[str, Any]:
    """The entries table's counts, and the durability settings the run wrote under."""
    conn = await asyncpg.connect(db_url)
    try:
        row = await conn.fetchrow(
            "SELECT count(*) AS n, count(DISTINCT leaf_hash) AS leaves, count(DISTINCT entry_id) AS ids, "
            "min(idx) AS lo, max(idx) AS hi FROM entries"
        )
        settings = {s: await conn.fetchval(f"SHOW {s}") for s in ("fsync", "synchronous_commit")}
        return {**dict(row), **settings}
    finally:
        await conn.close()


def audit(
    url: str, db_url: str, verifier: Verifier, receipts: Iterable[dict[str, Any]], notes: Iterable[bytes]
) -> tuple[Checkpoint, dict[str, Any], list[str]]:
    """What a fault run must leave, checked against the final checkpoint the log at ``url`` serves: every receipt
    verifies and is consistent with it, so is every checkpoint served during the run (``notes``), and the
    entries table holds each index below its size exactly once. Returns the final checkpoint, the table's
    counts (with the database's fsync and synchronous_commit) and every failure found."""
    db = asyncio.run(_entry_rows(db_url))
    # A server serves the newest checkpoint it has seen: wait (a little) until it has seen the last batch.
    deadline = time.monotonic() + 10
    while True:
        final = open_checkpoint(httpx.get(url + "/checkpoint").content, verifier)
        if final.size >= db["n"] or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    proofs: dict[int, list[bytes]] = {}

    def consistent(note: bytes) -> None:
        cp = open_checkpoint(note, verifier)
        if 0 < cp.size < final.size:
            if cp.size not in proofs:
                got = httpx.get(url + "/api/v1/proofs/consistency", params={"from": cp.size, "to": final.size})
                proofs[cp.size] = [b64decode(h, "proof") for h in got.json()["hashes"]]
            verify_consistency(cp.size, final.size, proofs[cp.size], cp.root_hash, final.root_hash)
        elif cp.size == final.size and cp.root_hash != final.root_hash:
            raise AssertionError("two roots for one size")
        elif cp.size > final.size:
            raise AssertionError("a checkpoint larger than the final one")

    failures: list[str] = []
    for r in receipts:
        try:
            verify_receipt(r, verifier)
            consistent(r["checkpoint"].encode())
        except Exception as exc:  # every failure is reported; none may happen
            failures.append(f"receipt {r.get('logIndex')}: {exc}")
    for note in set(notes):
        try:
            consistent(note)
        except Exception as exc:  # every failure is reported; none may happen
            failures.append(f"checkpoint: {exc}")

    if not (db["n"] == db["leaves"] == db["ids"] == final.size and db["lo"] == 0 and db["hi"] == final.size - 1):
        failures.append(f"database rows {db} do not match the final tree size {final.size}")
    return final, db, failures


def report(name: str, result: dict[str, Any]) -> None:
    result = {
        "benchmark": name,
        "machine": machine(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **result,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
