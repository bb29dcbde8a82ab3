"""Monitor replay of an attested log (target >= 3,000 entries/s on 100,000 entries).

Builds a log of ``--entries`` attested entries (each with its own simulated TDX quote, admitted over HTTP by
a 2-worker server), then runs the monitor's replay against it: fetch every entry bundle and submission,
rebuild the tree and compare it with the signed checkpoint, and re-verify every entry (DSSE signature,
statement, quote against the collateral the entry names, REPORTDATA binding, body, back-links). In the same
run it replays with one process, so the report gives the parallel speed-up.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from atlas_log.checkpoint import open_checkpoint
from atlas_log.note import Verifier
from atlas_log.replay import Replay
from atlas_log.reverify import Trust
from atlas_log.testing.demo import demo_submission
from atlas_log.testing.simulate import SimulatedPlatform
from bench.common import Server, fresh_database, loadgen, report


def _requests(platform_dir: Path, start: int, count: int) -> list[str]:
    platform = SimulatedPlatform.load(platform_dir)
    key = Ed25519PrivateKey.generate()
    return [
        json.dumps({"method": "POST", "path": "/api/v1/entries", "body": demo_submission(key, i, platform)})
        for i in range(start, start + count)
    ]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--workers", type=int, default=2, help="replay processes")
    ap.add_argument("--single-sample", type=int, default=10_000, help="entries replayed by one process")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="atlas-bench-replay-"))
    url = fresh_database("atlas_bench_replay")
    server = Server(url, tmp / "data", workers=2)
    try:
        platform_dir = tmp / "data" / "simulated-tdx"
        reqs = tmp / "entries.jsonl"
        step = 5_000
        with ProcessPoolExecutor(2) as pool, reqs.open("w") as f:
            chunks = [(platform_dir, s, min(step, args.entries - s)) for s in range(0, args.entries, step)]
            for lines in pool.map(_requests, *zip(*chunks, strict=True)):
                f.write("\n".join(lines) + "\n")
        load = loadgen(server.url, reqs, 64, 3600)
        assert load["statuses"] == {"201": args.entries}, load["statuses"]
        vkey = httpx.get(server.url + "/api/v1/log").json()["verifierKey"]
        note = httpx.get(server.url + "/checkpoint").content
        checkpoint = open_checkpoint(note, Verifier.from_vkey(vkey))
        trust = Trust(tdx_roots=(SimulatedPlatform.load(platform_dir).root_fingerprint,))

        replay = Replay(server.url, trust, args.workers)
        full = replay.run(checkpoint)
        assert full.problems == [] and full.entries == checkpoint.size, full.problems[:5]

        # One process over a prefix: the rate a single core gives (a prefix is a valid tree only as a count,
        # so the measure is the entries checked per second, not the final root comparison).
        single = Replay(server.url, trust, 1)
        t0 = time.perf_counter()
        blocks = list(single._blocks(0, min(args.single_sample, checkpoint.size)))
        single_s = time.perf_counter() - t0
        checked = sum(len(b) for b in blocks)
        assert all(c.problem is None for b in blocks for c in b)
    finally:
        server.stop()
    rate = full.entries / full.seconds
    report(
        "replay",
        {
            "entries": checkpoint.size,
            "attested": True,
            "admission": {"rps": load["rps"], "seconds": load["seconds"]},
            "replay": {"workers": args.workers, "seconds": round(full.seconds, 3), "entries_per_s": round(rate, 1)},
            "single_process": {
                "entries": checked,
                "seconds": round(single_s, 3),
                "entries_per_s": round(checked / single_s, 1),
            },
            "speedup": round(rate / (checked / single_s), 2),
            "targets": {"entries_per_s": 3000},
            "target_met": rate >= 3000,
        },
    )


if __name__ == "__main__":
    main()
