"""HTTP admission of distinct DSSE-signed entries over HTTP, with a separate load-generator process.

Default: attested entries, each with a simulated TDX quote bound to it, fully verified by the server
(collateral fetched over HTTP from the local PCS stand-in, cached), committed to PostgreSQL under a signed
checkpoint (target >= 1,500 entries/s, p99 receipt latency <= 250 ms). ``--unattested``: the same without
quotes, on a server configured to admit them (target >= 2,000 entries/s, p99 <= 250 ms).
In the same run it measures ``GET /healthz`` on the same server: the HTTP stack's own ceiling here.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from atlas_log.testing.demo import demo_submission
from atlas_log.testing.simulate import SimulatedPlatform
from bench.common import Server, fresh_database, loadgen, report, write_submissions


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=40_000)
    ap.add_argument("--duration", type=float, default=20)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--unattested", action="store_true")
    ap.add_argument("--tag", default="", help="suffix for the result file name (e.g. a long run)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="atlas-bench-admission-"))
    health = tmp / "health.jsonl"
    health.write_text('{"method": "GET", "path": "/healthz"}\n' * 200_000)
    url = fresh_database("atlas_bench_admission")
    env = {"ATLAS_ALLOW_UNATTESTED": "true"} if args.unattested else {}
    server = Server(url, tmp / "data", workers=args.workers, **env)
    platform = None if args.unattested else SimulatedPlatform.load(tmp / "data" / "simulated-tdx")
    key = Ed25519PrivateKey.generate()
    reqs = write_submissions(tmp / "entries.jsonl", (demo_submission(key, i, platform) for i in range(args.entries)))
    try:
        ceiling = loadgen(server.url, health, args.concurrency, 5, warmup=2000)
        admission = loadgen(server.url, reqs, args.concurrency, args.duration, warmup=1000)
    finally:
        server.stop()
    ok = admission["statuses"].get("201", 0)
    target = 2000 if args.unattested else 1500
    report(
        ("admission-unattested" if args.unattested else "admission") + (f"-{args.tag}" if args.tag else ""),
        {
            "attested": not args.unattested,
            "workers": args.workers,
            "concurrency": args.concurrency,
            "admission": admission,
            "healthz_ceiling": ceiling,
            "admission_vs_healthz": round(admission["rps"] / ceiling["rps"], 3),
            "all_201": ok == admission["requests"],
            "targets": {"entries_per_s": target, "p99_ms": 250},
            "target_met": admission["rps"] >= target and admission["latency_ms"]["p99"] <= 250,
        },
    )


if __name__ == "__main__":
    main()
