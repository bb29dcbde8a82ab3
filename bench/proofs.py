"""Inclusion-proof serving over HTTP on a 1,000,000-entry log (target >= 5,000 proofs/s, and latency at 1M
within 20% of latency at 10k).

Builds a 10,000-entry and a 1,000,000-entry log with the sequencer, serves each with a real server and
queries random-index inclusion proofs from a separate load-generator process. ``GET /healthz`` on the same
server is the peer figure: the HTTP stack's ceiling on this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import tempfile
from pathlib import Path
from typing import Any

from atlas_log.checkpoint import Checkpoint, sign_checkpoint
from atlas_log.merkle import EMPTY_ROOT
from atlas_log.note import Signer
from atlas_log_server.db.engine import create_pool
from atlas_log_server.db.repository import Repository
from atlas_log_server.log.sequencer import PendingEntry, Sequencer
from atlas_log_server.log.signer import CheckpointSigner
from bench.common import Server, fresh_database, loadgen, report

ORIGIN = "atlas-log.localhost/dev"


async def build(url: str, n: int, key: Path) -> None:
    signer = Signer.generate(ORIGIN)
    key.parent.mkdir(parents=True, exist_ok=True)
    key.write_text(signer.skey + "\n")
    pool = await create_pool(url, 4)
    repo = Repository(pool, ORIGIN)
    await repo.init_log(sign_checkpoint(Checkpoint(ORIGIN, 0, EMPTY_ROOT), signer))
    seq = Sequencer(repo, CheckpointSigner(signer), max_batch=4096, max_age_s=0.01, max_pending=1)
    for start in range(0, n, 4096):
        batch = []
        for i in range(start, min(n, start + 4096)):
            body = b'{"bench":%d}' % i
            batch.append(PendingEntry(hashlib.sha256(body).digest(), body, b"{}", 1_795_000_000))
        await seq.append(batch)
    await pool.close()


def measure(n: int, tmp: Path, requests: int, duration: float, workers: int) -> dict[str, Any]:
    url = fresh_database(f"atlas_bench_proofs_{n}")
    data = tmp / f"data-{n}"
    asyncio.run(build(url, n, data / "log.key"))
    rng = random.Random(n)
    # Warm-up: every level-0 tile several times over (each worker process keeps its own tile cache), the
    # steady state of a long-running server; then the measured run with uniformly random indices.
    tiles = (n + 255) // 256
    warm = [min(n - 1, t * 256 + rng.randrange(256)) for t in range(tiles) for _ in range(4 * workers)]
    rng.shuffle(warm)
    indices = warm + [rng.randrange(n) for _ in range(requests)]
    reqs = tmp / f"proofs-{n}.jsonl"
    with reqs.open("w") as f:
        for i in indices:
            path = f"/api/v1/proofs/inclusion?index={i}&treeSize={n}"
            f.write(json.dumps({"method": "GET", "path": path}) + "\n")
    health = tmp / "health.jsonl"
    health.write_text('{"method": "GET", "path": "/healthz"}\n' * 100_000)
    server = Server(url, data, workers=workers)
    try:
        ceiling = loadgen(server.url, health, 64, 4, warmup=2000)
        # Warm-up touches the tiles a process caches; then the measured run.
        result = loadgen(server.url, reqs, 64, duration, warmup=len(warm))
    finally:
        server.stop()
    return {"entries": n, "warmup_requests": len(warm), "proofs": result, "healthz_ceiling": ceiling}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--large", type=int, default=1_000_000)
    ap.add_argument("--small", type=int, default=10_000)
    ap.add_argument("--requests", type=int, default=150_000)
    ap.add_argument("--duration", type=float, default=15)
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="atlas-bench-proofs-"))
    small = measure(args.small, tmp, args.requests, args.duration, args.workers)
    large = measure(args.large, tmp, args.requests, args.duration, args.workers)
    p50_ratio = large["proofs"]["latency_ms"]["p50"] / small["proofs"]["latency_ms"]["p50"]
    rps_ratio = large["proofs"]["rps"] / small["proofs"]["rps"]
    # Mean latency follows from Little's law at a fixed concurrency: concurrency / throughput.
    mean_ratio = small["proofs"]["rps"] / large["proofs"]["rps"]
    report(
        "proofs" if args.workers == 1 else f"proofs-{args.workers}workers",
        {
            "workers": args.workers,
            "small": small,
            "large": large,
            "large_vs_small_p50_latency": round(p50_ratio, 3),
            "large_vs_small_rps": round(rps_ratio, 3),
            "large_vs_small_mean_latency": round(mean_ratio, 3),
            "large_vs_healthz_rps": round(large["proofs"]["rps"] / large["healthz_ceiling"]["rps"], 3),
            "targets": {"proofs_per_s": 5000, "latency_ratio_max": 1.2},
            "target_met": large["proofs"]["rps"] >= 5000 and p50_ratio <= 1.2,
        },
    )


if __name__ == "__main__":
    main()
