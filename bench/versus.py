"""This tree's benchmarks against an earlier commit's, in one run: admission, history and proofs.

Each benchmark runs as its own process with one tree on the path (the earlier commit is checked out into a
temporary git worktree), alternating which tree goes first from round to round, so drift in the machine falls
on both. Prints JSON: each run's headline figures, the medians per tree, and the ratio this tree / earlier
(throughput above 1 and latency below 1 are improvements). Durability is reported as PostgreSQL has it
(``fsync``, ``synchronous_commit``); the benchmarks commit every batch.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg

from bench.common import ROOT, machine, server_url

# Headline figures per benchmark: name -> how to read it from the benchmark's result.
FIGURES: dict[str, dict[str, Callable[[dict[str, Any]], float]]] = {
    "admission": {
        "entries_per_s": lambda d: d["admission"]["rps"],
        "p50_ms": lambda d: d["admission"]["latency_ms"]["p50"],
        "p99_ms": lambda d: d["admission"]["latency_ms"]["p99"],
    },
    "history": {
        "cold_ms_at_1000": lambda d: d["sizes"]["1000"]["cold_ms"],
        "warm_ms_at_1000": lambda d: d["sizes"]["1000"]["warm_ms"],
    },
    "proofs": {
        "proofs_per_s_large": lambda d: d["large"]["proofs"]["rps"],
        "p50_ms_large": lambda d: d["large"]["proofs"]["latency_ms"]["p50"],
    },
}


def _durability() -> dict[str, str]:
    async def read() -> dict[str, str]:
        conn = await asyncpg.connect(server_url())
        try:
            return {k: str(await conn.fetchval(f"SHOW {k}")) for k in ("fsync", "synchronous_commit")}
        finally:
            await conn.close()

    return asyncio.run(read())


def _run(tree: Path, bench: str, args: list[str]) -> dict[str, float]:
    result = tree / "bench" / "results" / f"{bench}.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(p) for p in (tree / "client", tree / "server", tree))}
    subprocess.run(
        [sys.executable, "-m", f"bench.{bench}", *args], cwd=tree, env=env, check=True, stdout=subprocess.DEVNULL
    )
    data = json.loads(result.read_text())
    return {name: float(read(data)) for name, read in FIGURES[bench].items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", required=True, help="the earlier commit to compare with")
    ap.add_argument("--rounds", type=int, default=3, help="runs of each benchmark per tree (default 3)")
    ap.add_argument("--proofs-large", type=int, default=300_000, help="entries of the large proofs log")
    ap.add_argument("--only", nargs="*", choices=sorted(FIGURES), default=sorted(FIGURES))
    args = ap.parse_args()
    extra = {"admission": [], "history": [], "proofs": ["--large", str(args.proofs_large)]}
    # The benchmarks write their own result files: keep this tree's recorded ones as they are.
    saved = {b: (ROOT / "bench" / "results" / f"{b}.json").read_bytes() for b in args.only}
    base_dir = Path(tempfile.mkdtemp(prefix="atlas-versus-")) / "base"
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(base_dir), args.base], cwd=ROOT, check=True, capture_output=True
    )
    runs: dict[str, dict[str, list[dict[str, float]]]] = {b: {"this": [], "base": []} for b in args.only}
    try:
        for r in range(args.rounds):
            order = [("base", base_dir), ("this", ROOT)]
            for bench in args.only:
                for name, tree in order if r % 2 == 0 else order[::-1]:
                    print(f"round {r + 1}: {bench} on {name}", file=sys.stderr, flush=True)
                    runs[bench][name].append(_run(tree, bench, extra[bench]))
    finally:
        for b, data in saved.items():
            (ROOT / "bench" / "results" / f"{b}.json").write_bytes(data)
        subprocess.run(["git", "worktree", "remove", "--force", str(base_dir)], cwd=ROOT, capture_output=True)
    summary: dict[str, Any] = {}
    for bench, by_tree in runs.items():
        medians = {t: {f: statistics.median(run[f] for run in rs) for f in FIGURES[bench]} for t, rs in by_tree.items()}
        summary[bench] = {
            "runs": by_tree,
            "median": medians,
            "ratio_this_over_base": {f: round(medians["this"][f] / medians["base"][f], 3) for f in FIGURES[bench]},
        }
    out = {
        "benchmark": "versus",
        "machine": machine(),
        "base": args.base,
        "this": subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip(),
        "durability": _durability(),
        "rounds": args.rounds,
        "proofs_large": args.proofs_large,
        "results": summary,
    }
    text = json.dumps(out, indent=2)
    (ROOT / "bench" / "results" / "versus.json").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
