"""HTTP admission of distinct DSSE-signed entries (target >= 2,000 entries/s, p99 receipt latency <= 250 ms).

A separate load-generator process sends pre-signed, distinct entries over 64 keep-alive connections to a
real server (``--workers`` processes appending to one PostgreSQL log). In the same run it measures
``GET /healthz`` on the same server: the HTTP stack's own ceiling on this machine, as the peer figure.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from atlas_log.submission import demo_submission
from bench.common import Server, fresh_database, loadgen, report


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=40_000)
    ap.add_argument("--duration", type=float, default=20)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="atlas-bench-admission-"))
    key = Ed25519PrivateKey.generate()
    reqs = tmp / "entries.jsonl"
    with reqs.open("w") as f:
        for i in range(args.entries):
            f.write(json.dumps({"method": "POST", "path": "/api/v1/entries", "body": demo_submission(key, i)}) + "\n")
    health = tmp / "health.jsonl"
    health.write_text('{"method": "GET", "path": "/healthz"}\n' * 200_000)
    url = fresh_database("atlas_bench_admission")
    server = Server(url, tmp / "data", workers=args.workers)
    try:
        ceiling = loadgen(server.url, health, args.concurrency, 5, warmup=2000)
        admission = loadgen(server.url, reqs, args.concurrency, args.duration, warmup=1000)
    finally:
        server.stop()
    ok = admission["statuses"].get("201", 0)
    report("admission", {
        "workers": args.workers,
        "concurrency": args.concurrency,
        "admission": admission,
        "healthz_ceiling": ceiling,
        "admission_vs_healthz": round(admission["rps"] / ceiling["rps"], 3),
        "all_201": ok == admission["requests"],
        "targets": {"entries_per_s": 2000, "p99_ms": 250},
        "target_met": admission["rps"] >= 2000 and admission["latency_ms"]["p99"] <= 250,
    })


if __name__ == "__main__":
    main()
