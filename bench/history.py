"""Verifying a model's history: 10, 100 and 1,000 entries, cold (empty cache) and warm (targets at 1,000:
cold <= 200 ms, warm <= 20 ms; growth near-linear).

A real server holds a dataset consumed by N training runs (attested entries); the client fetches the history
answer once per size and times only ``verify_history`` (pure: checkpoint signature, N inclusion proofs, leaf
parsing, what each leaf says, the back-link chain). For comparison, the Atlas paper reports at most a 50%
cut in verification latency from caching.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from atlas_log.history import HistoryCache, verify_history
from atlas_log.intoto import SLSA_V1
from atlas_log.submission import intoto_statement, signed_submission
from atlas_log.testing.simulate import SimulatedPlatform
from bench.common import Server, fresh_database, report

DATASET = hashlib.sha256(b"bench-dataset").hexdigest()


def _payload(i: int) -> bytes:
    model = hashlib.sha256(b"model-%d" % i).hexdigest()
    return intoto_statement(
        [(f"model-{i}", model)],
        SLSA_V1,
        {
            "buildDefinition": {
                "buildType": "https://atlas-log.dev/ml/training/v1",
                "externalParameters": {"inputs": [{"name": "data", "digest": {"sha256": DATASET}}]},
            },
            "runDetails": {"builder": {"id": "https://example.com/trainer"}},
        },
    )


async def _fill(url: str, platform: SimulatedPlatform, n: int) -> None:
    key = Ed25519PrivateKey.generate()
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        sem = asyncio.Semaphore(32)

        async def one(i: int) -> None:
            async with sem:
                r = await http.post("/api/v1/entries", json=signed_submission(key, _payload(i), platform))
                r.raise_for_status()

        await asyncio.gather(*(one(i) for i in range(n)))


def _time(fn: object, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()  # type: ignore[operator]
        samples.append(time.perf_counter() - t)
    return statistics.median(samples) * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10,100,1000")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="atlas-bench-history-"))
    server = Server(fresh_database("atlas_bench_history"), tmp / "data")
    try:
        platform = SimulatedPlatform.load(tmp / "data" / "simulated-tdx")
        asyncio.run(_fill(server.url, platform, max(sizes)))
        vkey = httpx.get(server.url + "/api/v1/log").json()["verifierKey"]
        results = {}
        for n in sizes:
            answer = httpx.get(
                f"{server.url}/api/v1/artifacts/sha256:{DATASET}/history", params={"limit": n}, timeout=120
            ).json()
            assert len(answer["entries"]) == n
            cold = _time(lambda a=answer: verify_history(a, vkey, cache=HistoryCache()), 5)
            cache = HistoryCache()
            verify_history(answer, vkey, cache=cache)
            warm = _time(lambda a=answer, c=cache: verify_history(a, vkey, cache=c), 5)
            results[str(n)] = {
                "cold_ms": round(cold, 2),
                "warm_ms": round(warm, 2),
                "warm_vs_cold": round(warm / cold, 3),
            }
    finally:
        server.stop()
    big = results[str(max(sizes))]
    report(
        "history",
        {
            "sizes": results,
            "per_entry_cold_us": {n: round(r["cold_ms"] * 1000 / int(n), 1) for n, r in results.items()},
            "targets": {"cold_ms_at_1000": 200, "warm_ms_at_1000": 20},
            "target_met": big["cold_ms"] <= 200 and big["warm_ms"] <= 20,
        },
    )


if __name__ == "__main__":
    main()
