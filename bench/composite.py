"""What GPU evidence costs at admission, in one run against TDX-only entries on the same code.

Attested admission over HTTP (as ``bench/admission.py``: simulated quotes, full TDX verification, a PostgreSQL
commit per batch, fsync and synchronous_commit as the server has them): the same demo statements with a quote
only, and with a quote and the evidence of ``--gpus`` simulated GPUs under the composite binding (each GPU's
report verified, its device chain validated, its driver and VBIOS RIMs from the log's RIM store compared with
its measurements), alternating rounds (target: composite within 25 % of TDX-only).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from atlas_log.gpu.evidence import GpuEvidence
from atlas_log.testing.demo import demo_submission
from atlas_log.testing.simulate import SimulatedPlatform
from atlas_log.testing.simulated_gpu import SimulatedGpu
from bench.common import (
    Run,
    Server,
    admission_run,
    alternating,
    fresh_database,
    loadgen,
    medians,
    report,
    write_submissions,
)
from bench.completeness import _durability


class _Machine:
    def __init__(self, gpus: list[SimulatedGpu]) -> None:
        self.gpus = gpus

    def gpu_evidence(self, nonce: bytes) -> list[GpuEvidence]:
        return [g.evidence(nonce) for g in self.gpus]


def _admission(rounds: int, entries: int, duration: float, gpus: int) -> dict[str, Any]:
    durability: dict[str, str] = {}

    def run(name: str) -> Run:
        nonlocal durability
        tmp = Path(tempfile.mkdtemp(prefix="atlas-bench-composite-"))
        url = fresh_database("atlas_bench_composite")
        durability = _durability(url)
        server = Server(url, tmp / "data", workers=2, ATLAS_MAP_INTERVAL_S="0")
        platform = SimulatedPlatform.load(tmp / "data" / "simulated-tdx")
        first = SimulatedGpu.load(tmp / "data" / "simulated-gpu")
        machine = _Machine([first, *(first.sibling() for _ in range(gpus - 1))]) if name == "composite" else None
        key = Ed25519PrivateKey.generate()
        reqs = write_submissions(
            tmp / "entries.jsonl", (demo_submission(key, i, platform, gpus=machine) for i in range(entries))
        )
        try:
            return admission_run(loadgen(server.url, reqs, 64, duration, warmup=1000))
        finally:
            server.stop()

    runs = alternating(rounds, ("composite", "tdx-only"), run)
    median = medians(runs)
    ratio = median["composite"]["entries_per_s"] / median["tdx-only"]["entries_per_s"]
    return {
        "durability": durability,
        "gpus_per_entry": gpus,
        "runs": runs,
        "median": median,
        "throughput_ratio_composite_over_tdx_only": round(ratio, 3),
        "throughput_target": "composite within 25 % of TDX-only",
        "throughput_target_met": ratio >= 0.75,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--entries", type=int, default=20_000, help="submissions prepared per run")
    ap.add_argument("--duration", type=float, default=15)
    ap.add_argument("--gpus", type=int, default=1, help="GPUs per composite entry")
    args = ap.parse_args()
    report("composite", _admission(args.rounds, args.entries, args.duration, args.gpus))


if __name__ == "__main__":
    main()
