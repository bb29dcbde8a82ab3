"""How the log's costs grow with its size: one log grown through the sequencer to each size asked (default
10^4, 10^5, 10^6; ``--sizes`` takes 10^7 too), measured at each.

At each size: the sequencing rate while growing to it (leaves through ``Sequencer.append``, the batch
transaction a request's entry takes, about 700-byte leaves, one in 1,000 naming a shared artifact with a
realistic index row), the database's size per entry (table and index bytes of entries, tiles and the artifact
index), the time to start a server on it, and over HTTP with a real server: inclusion proof latency p50/p99
and proofs/s (right after the server starts, while its tile caches fill, and then once they are full),
consistency proof latency, and the latency
of the history of an artifact named by one entry in 1,000 (the newest page). Before measuring at a size
the tables are vacuumed and analysed and a checkpoint is taken (what autovacuum and the checkpointer would do
after the burst), so the reads measure a settled database. Durability: the server's fsync and
synchronous_commit as configured (reported).

Proof latency should be flat to logarithmic (proof size is log2 of the tree; tiles are fetched by key);
``growth`` reports each metric at the largest size over the smallest. A tree with more tiles than the
server's default tile cache is measured again with the cache sized to hold it (``cache_fits``).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from atlas_log.checkpoint import Checkpoint, sign_checkpoint
from atlas_log.entry import IndexRow
from atlas_log.merkle import EMPTY_ROOT
from atlas_log.note import Signer
from atlas_log_server.config import DEFAULT_BATCH_MAX_SIZE, DEFAULT_TILE_CACHE_TILES
from atlas_log_server.db.engine import create_pool
from atlas_log_server.db.repository import Repository
from atlas_log_server.log.proofs import tree_tiles
from atlas_log_server.log.sequencer import PendingEntry, Sequencer
from atlas_log_server.log.signer import CheckpointSigner
from bench.common import Server, fresh_database, loadgen, report
from bench.completeness import _durability

ORIGIN = "atlas-log.localhost/dev"
LEAF_BYTES = 700
SHARED = "sha256:" + hashlib.sha256(b"the model every thousandth entry names").hexdigest()
TABLES = ("entries", "tiles", "entry_artifacts")
WORKERS = 2


def _entries(start: int, count: int, pad: bytes) -> list[PendingEntry]:
    out = []
    for i in range(start, start + count):
        body = b'{"n":' + str(i).encode() + b',"pad":"' + pad + b'"}'
        shared = i % 1000 == 0
        rows = (IndexRow(SHARED, "subject", "model", "$.subject[0]", None),) if shared else ()
        out.append(
            PendingEntry(
                hashlib.sha256(body).digest(), body, b"{}", 1_795_000_000 + i, (SHARED,) if shared else (), rows
            )
        )
    return out


async def _grow(url: str, signer: Signer, sizes: list[int]) -> dict[int, dict[str, Any]]:
    """Grow the log to each size in turn; after each, the sequencing rate and the database's size."""
    pool = await create_pool(url, 8)
    repo = Repository(pool, ORIGIN)
    await repo.init_log(sign_checkpoint(Checkpoint(ORIGIN, 0, EMPTY_ROOT), signer))
    seq = Sequencer(
        repo,
        CheckpointSigner(signer),
        max_batch=DEFAULT_BATCH_MAX_SIZE,
        max_age_s=0.01,
        max_pending=DEFAULT_BATCH_MAX_SIZE,
    )
    pad = os.urandom((LEAF_BYTES - 40) // 2).hex().encode()
    size = 0
    out: dict[int, dict[str, Any]] = {}
    for target in sizes:
        started = time.perf_counter()
        while size < target:
            n = min(DEFAULT_BATCH_MAX_SIZE, target - size)
            await seq.append(_entries(size, n, pad))
            size += n
        grown = target - (sizes[sizes.index(target) - 1] if sizes.index(target) else 0)
        rate = grown / (time.perf_counter() - started)
        # What serving sees in steady state, not the tail of a write burst: the vacuum that autovacuum would run
        # after the inserts, and the checkpoint that writes their dirty pages, done before measuring.
        await pool.execute("VACUUM (ANALYZE) entries, entry_artifacts, tiles, checkpoints")
        await pool.execute("CHECKPOINT")
        stats: dict[str, Any] = {}
        for table in TABLES:
            row = await pool.fetchrow("SELECT pg_relation_size($1) AS heap, pg_indexes_size($1) AS idx", table)
            assert row is not None
            stats[table] = {
                "table_bytes_per_entry": round(row["heap"] / size, 1),
                "index_bytes_per_entry": round(row["idx"] / size, 1),
            }
        total = sum([await pool.fetchval("SELECT pg_total_relation_size($1)", t) for t in TABLES])
        out[target] = {"sequencing_leaves_per_s": round(rate), "bytes_per_entry": round(total / size, 1), **stats}
        print(f"grew to {target}: {out[target]}", flush=True)
        await _measure_http(url, signer, target, out[target])
        print(f"measured at {target}: {out[target]}", flush=True)
    await pool.close()
    return out


def _warm(server: Server, tiles: int, workers: int) -> float:
    """Wait until every worker's tile cache holds ``tiles`` (its warm-up done); returns the seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < 600:
        text = httpx.get(server.url + "/metrics", timeout=10).text
        cached = [
            s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name == "atlas_tile_cache_tiles" and "pid" in s.labels
        ]
        if len(cached) == workers and min(cached) >= tiles:
            return round(time.monotonic() - started, 1)
        time.sleep(0.5)
    raise RuntimeError(f"the tile caches did not warm to {tiles} tiles")


def _proofs(server: Server, reqs: Path, seconds: float = 10, warmup: int = 500) -> dict[str, float]:
    out = loadgen(server.url, reqs, 32, seconds, warmup=warmup)
    return {"proofs_per_s": out["rps"], "p50_ms": out["latency_ms"]["p50"], "p99_ms": out["latency_ms"]["p99"]}


async def _measure_http(url: str, signer: Signer, size: int, into: dict[str, Any]) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="atlas-bench-scale-"))
    (tmp / "data").mkdir()
    (tmp / "data" / "log.key").write_text(signer.skey + "\n")
    started = time.perf_counter()
    server = Server(url, tmp / "data", workers=WORKERS, ATLAS_ORIGIN=ORIGIN, ATLAS_MAP_INTERVAL_S="0")
    tiles = len(tree_tiles(size))
    into["tree_tiles"] = tiles
    into["tile_cache_tiles"] = DEFAULT_TILE_CACHE_TILES
    try:
        into["server_start_s"] = round(time.perf_counter() - started, 2)
        rng = random.Random(size)
        reqs = tmp / "inclusion.jsonl"
        with reqs.open("w") as f:
            for _ in range(50_000):
                f.write(
                    json.dumps(
                        {
                            "method": "GET",
                            "path": f"/api/v1/proofs/inclusion?index={rng.randrange(size)}&treeSize={size}",
                        }
                    )
                    + "\n"
                )
        # Right after the start (the tile caches filling in the background meanwhile), then once every worker's
        # warm-up is done: the steady state.
        into["inclusion_cold"] = _proofs(server, reqs)
        into["tile_cache_warm_s"] = _warm(server, min(tiles, DEFAULT_TILE_CACHE_TILES), WORKERS)
        into["inclusion"] = _proofs(server, reqs)
        cons = tmp / "consistency.jsonl"
        with cons.open("w") as f:
            for _ in range(20_000):
                first = rng.randrange(1, size)
                f.write(
                    json.dumps({"method": "GET", "path": f"/api/v1/proofs/consistency?from={first}&to={size}"}) + "\n"
                )
        into["consistency"] = _proofs(server, cons, 8, 200)
        with httpx.Client(base_url=server.url, timeout=60) as http:
            times = []
            for _ in range(20):
                t = time.perf_counter()
                r = http.get(f"/api/v1/artifacts/{SHARED}/history", params={"limit": 100})
                times.append((time.perf_counter() - t) * 1000)
                assert r.status_code == 200, r.text
            times.sort()
            into["history_of_an_artifact_with_entries"] = {
                "entries_naming_it": size // 1000,
                "p50_ms": round(times[len(times) // 2], 2),
                "max_ms": round(times[-1], 2),
            }
    finally:
        server.stop()
    if tiles > DEFAULT_TILE_CACHE_TILES:
        # A tree past the default cache: the same, with the cache sized to hold it (64 bytes per entry).
        server = Server(
            url,
            tmp / "data",
            workers=WORKERS,
            ATLAS_ORIGIN=ORIGIN,
            ATLAS_MAP_INTERVAL_S="0",
            ATLAS_TILE_CACHE_TILES=str(tiles),
        )
        try:
            into["cache_fits"] = {
                "tile_cache_tiles": tiles,
                "tile_cache_warm_s": _warm(server, tiles, WORKERS),
                "inclusion": _proofs(server, reqs),
                "consistency": _proofs(server, cons, 8, 200),
            }
        finally:
            server.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated tree sizes, ascending")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    url = fresh_database("atlas_bench_scale")
    signer = Signer.generate(ORIGIN)
    results = asyncio.run(_grow(url, signer, sizes))
    first, last = results[sizes[0]], results[sizes[-1]]
    fitted = last.get("cache_fits", last)
    growth = {
        "inclusion_p50": round(last["inclusion"]["p50_ms"] / first["inclusion"]["p50_ms"], 2),
        "inclusion_p50_cache_fits": round(fitted["inclusion"]["p50_ms"] / first["inclusion"]["p50_ms"], 2),
        "consistency_p50": round(last["consistency"]["p50_ms"] / first["consistency"]["p50_ms"], 2),
        "consistency_p50_cache_fits": round(fitted["consistency"]["p50_ms"] / first["consistency"]["p50_ms"], 2),
        "sequencing_rate": round(last["sequencing_leaves_per_s"] / first["sequencing_leaves_per_s"], 2),
    }
    report(
        "scale",
        {
            "durability": _durability(url),
            "leaf_bytes": LEAF_BYTES,
            "sizes": {str(k): v for k, v in results.items()},
            "growth_largest_over_smallest": growth,
            "proof_latency_target": "inclusion p50 at the largest size within 1.3x of the smallest",
            "proof_latency_target_met": growth["inclusion_p50"] <= 1.3,
            "proof_latency_target_met_cache_fits": growth["inclusion_p50_cache_fits"] <= 1.3,
        },
    )


if __name__ == "__main__":
    main()
