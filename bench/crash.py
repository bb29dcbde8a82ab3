"""Crash safety: SIGKILL server processes at random moments while entries are submitted to them at a high rate.

Two (``--servers``) ``atlas-log-server serve`` processes share one PostgreSQL database. Client threads submit
distinct entries to both as fast as they answer, retrying a submission whose connection died (the same entry:
the log must answer with the one receipt, never a second leaf), and poll ``/checkpoint``. A killer thread
SIGKILLs a random server every ``--min``..``--max`` seconds and restarts it, ``--kills`` times.

Afterwards, against the final checkpoint: every receipt any client received verifies (its own inclusion proof
and checkpoint signature, then a consistency proof to the final tree); every checkpoint ever served (in a
receipt or at ``/checkpoint``) is consistent with the final one; no leaf and no entry exists twice; and every
index below the tree size holds exactly one entry. Prints JSON (and writes bench/results/crash.json).
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

from atlas_log.note import Verifier
from atlas_log.testing.demo import demo_submission
from bench.common import Server, audit, fresh_database, poll_checkpoints, report


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--servers", type=int, default=2)
    ap.add_argument("--kills", type=int, default=50)
    ap.add_argument("--clients", type=int, default=16, help="submitting threads")
    ap.add_argument("--min", type=float, default=0.3, help="shortest pause between kills (s)")
    ap.add_argument("--max", type=float, default=1.5, help="longest pause between kills (s)")
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="atlas-bench-crash-"))
    db_url = fresh_database("atlas_bench_crash")
    procs = [Server(db_url, tmp, ATLAS_ALLOW_UNATTESTED="true") for _ in range(args.servers)]
    vkey = httpx.get(procs[0].url + "/api/v1/log").json()["verifierKey"]
    verifier = Verifier.from_vkey(vkey)

    receipts: list[dict[str, Any]] = []
    notes: list[bytes] = []
    lock = threading.Lock()
    stop = threading.Event()
    counts = {"submitted": 0, "retries": 0, "created": 0, "existing": 0, "errors": {}}

    def client(n: int) -> None:
        key = Ed25519PrivateKey.generate()
        i = 0
        with httpx.Client(timeout=30) as http:
            while not stop.is_set():
                body = demo_submission(key, i)
                i += 1
                while not stop.is_set():  # the same entry until some server gives its receipt
                    url = rng.choice(procs).url
                    try:
                        r = http.post(url + "/api/v1/entries", json=body)
                    except httpx.HTTPError as exc:
                        with lock:
                            counts["retries"] += 1
                            key_ = type(exc).__name__
                            counts["errors"][key_] = counts["errors"].get(key_, 0) + 1
                        time.sleep(0.05)
                        continue
                    if r.status_code in (200, 201):
                        with lock:
                            receipts.append(r.json())
                            counts["created" if r.status_code == 201 else "existing"] += 1
                            counts["submitted"] += 1
                        break
                    with lock:
                        counts["retries"] += 1
                        counts["errors"][str(r.status_code)] = counts["errors"].get(str(r.status_code), 0) + 1
                    time.sleep(0.05)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(args.clients)]
    threads.append(threading.Thread(target=poll_checkpoints, args=(lambda: rng.choice(procs).url, stop, notes, lock)))
    for t in threads:
        t.start()
    restarts: list[float] = []
    started = time.monotonic()
    try:
        for _ in range(args.kills):
            time.sleep(rng.uniform(args.min, args.max))
            victim = rng.choice(procs)
            victim.kill()
            restarts.append(victim.start())
        time.sleep(1)
    finally:
        stop.set()
        for t in threads:
            t.join()
    elapsed = time.monotonic() - started

    final, db, failures = audit(procs[0].url, db_url, verifier, receipts, notes)
    for p in procs:
        p.stop()
    indices = [r["logIndex"] for r in receipts]
    report(
        "crash",
        {
            "servers": args.servers,
            "kills": args.kills,
            "seconds": round(elapsed, 1),
            "final_tree_size": final.size,
            "receipts": len(receipts),
            "distinct_receipt_indices": len(set(indices)),
            "receipts_201": counts["created"],
            "receipts_200_existing": counts["existing"],
            "client_retries": counts["retries"],
            "retry_causes": counts["errors"],
            "checkpoints_polled": len(set(notes)),
            "restart_seconds": {
                "median": round(sorted(restarts)[len(restarts) // 2], 2),
                "max": round(max(restarts), 2),
            },
            "database": db,
            "failures": failures[:20],
            "failure_count": len(failures),
            "ok": not failures,
        },
    )
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
