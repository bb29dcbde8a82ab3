"""Database outages under load: PostgreSQL stopped and started again while entries are submitted at a high rate.

One ``atlas-log-server serve --workers 2`` on a throwaway cluster of its own (the fault tests' ``Cluster``, with
fsync and synchronous_commit on). Client threads submit distinct entries as fast as they are answered, retrying
an entry until it is logged (the same entry: the log must answer with the one receipt), and poll
``/checkpoint``. A restarter stops PostgreSQL (``fast`` and ``immediate`` in turn: the second is a crash) at
random moments, ``--restarts`` times, and starts it again. A stop that lands inside a batch's COMMIT leaves the
signed checkpoint pending; the sequencer that signed it commits the same tree again once the database answers.

Reported: how long writes took to resume after each start (first entry logged after it), the answers clients got
meanwhile (by problem type; ``signing-refused`` would mean the log waited for its operator), how many lost
commits the servers settled (their log lines), and, against the final checkpoint, that every receipt verifies,
every checkpoint served is consistent with it, and every index holds exactly one entry. Prints JSON (and writes
bench/results/outage.json).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from tests.pgcluster import Cluster

from atlas_log.note import Verifier
from atlas_log.testing.demo import demo_submission
from atlas_log_server.db import migrate
from bench.common import Server, audit, poll_checkpoints, report


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--restarts", type=int, default=20)
    ap.add_argument("--clients", type=int, default=16, help="submitting threads")
    ap.add_argument("--up", type=float, nargs=2, default=(1.0, 3.0), help="seconds up between stops (range)")
    ap.add_argument("--down", type=float, nargs=2, default=(0.3, 2.0), help="seconds down (range)")
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="atlas-bench-outage-"))
    cluster = Cluster()
    cluster.start()
    migrate.upgrade(cluster.url)
    log = tmp / "server.log"
    server = Server(cluster.url, tmp / "data", workers=2, log=log, ATLAS_ALLOW_UNATTESTED="true")
    verifier = Verifier.from_vkey(httpx.get(server.url + "/api/v1/log").json()["verifierKey"])

    receipts: list[tuple[float, dict[str, Any]]] = []
    notes: list[bytes] = []
    answers: dict[str, int] = {}
    lock = threading.Lock()
    stop = threading.Event()

    def client() -> None:
        key = Ed25519PrivateKey.generate()
        i = 0
        with httpx.Client(timeout=30) as http:
            while not stop.is_set():
                body = demo_submission(key, i)
                i += 1
                while not stop.is_set():  # the same entry until it is logged
                    try:
                        r = http.post(server.url + "/api/v1/entries", json=body)
                    except httpx.HTTPError as exc:
                        what = type(exc).__name__
                    else:
                        if r.status_code in (200, 201):
                            with lock:
                                receipts.append((time.monotonic(), r.json()))
                            break
                        what = f"{r.status_code} {str(r.json().get('type', '?')).rsplit('/', 1)[-1]}"
                    with lock:
                        answers[what] = answers.get(what, 0) + 1
                    time.sleep(0.05)

    threads = [threading.Thread(target=client) for _ in range(args.clients)]
    threads.append(threading.Thread(target=poll_checkpoints, args=(lambda: server.url, stop, notes, lock)))
    for t in threads:
        t.start()
    started_at: list[float] = []
    started = time.monotonic()
    try:
        for n in range(args.restarts):
            time.sleep(rng.uniform(*args.up))
            cluster.stop("immediate" if n % 2 else "fast")
            time.sleep(rng.uniform(*args.down))
            cluster.start()
            started_at.append(time.monotonic())
        time.sleep(max(args.up))
    finally:
        stop.set()
        for t in threads:
            t.join()
    elapsed = time.monotonic() - started

    logged_at = sorted(t for t, _ in receipts)
    resumed = []
    for up in started_at:
        first = next((t for t in logged_at if t >= up), None)
        resumed.append(None if first is None else first - up)

    final, db, failures = audit(server.url, cluster.url, verifier, (r for _, r in receipts), notes)
    server.stop()
    cluster.remove()
    if any(r is None for r in resumed):
        failures.append("writes did not resume after a start")
    said = log.read_text(errors="replace")
    waits = sorted(r for r in resumed if r is not None)
    report(
        "outage",
        {
            "restarts": args.restarts,
            "workers": 2,
            "durability": {"fsync": db["fsync"], "synchronous_commit": db["synchronous_commit"]},
            "seconds": round(elapsed, 1),
            "final_tree_size": final.size,
            "receipts": len(receipts),
            "writes_resumed_after_start_s": {
                "median": round(waits[len(waits) // 2], 2) if waits else None,
                "max": round(waits[-1], 2) if waits else None,
            },
            "answers_meanwhile": dict(sorted(answers.items())),
            "lost_commits_committed_again": said.count("whose commit was lost is committed"),
            "lost_commits_not_yet": said.count("whose commit was lost is not committed yet"),
            "checkpoints_polled": len(set(notes)),
            "failures": failures[:20],
            "failure_count": len(failures),
            "ok": not failures,
        },
    )
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
