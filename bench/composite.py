"""What GPU evidence costs at admission, in one run against TDX-only entries on the same code.

Attested admission over HTTP (as ``bench/admission.py``: simulated quotes, full TDX verification, a PostgreSQL
commit per batch, fsync and synchronous_commit as the server has them): the same demo statements with a quote
only, and with a quote and the evidence of ``--gpus`` simulated GPUs under the composite binding (each GPU's
report verified, its device chain validated, its driver and VBIOS RIMs from the log's RIM store compared with
its measurements), alternating rounds (target: composite within 25 % of TDX-only).

The same run measures the physical ceiling of that ratio: a composite entry costs at least a TDX-only entry
plus one ECDSA P-384 verification per GPU (its report's signature, which no verifier can skip). With the
machine's cores all verifying P-384 signatures at ``F``/s and TDX-only admission at ``T`` entries/s, no
composite admission can exceed ``1 / (1/T + gpus/F)`` entries/s: ``ceiling = F / (F + gpus * T)``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
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


def _verifies(seconds: float) -> int:
    """P-384 verifications of one signature over a report-sized message for ``seconds``, on one core."""
    key = ec.generate_private_key(ec.SECP384R1())
    message = os.urandom(4000)
    signature = key.sign(message, ec.ECDSA(hashes.SHA384()))
    public = key.public_key()
    done, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        for _ in range(50):
            public.verify(signature, message, ec.ECDSA(hashes.SHA384()))
        done += 50
    return done


def _floor_rate(seconds: float = 5) -> float:
    """P-384 verifications per second with every core verifying (as every core admits under load)."""
    cores = os.cpu_count() or 1
    with multiprocessing.get_context("spawn").Pool(cores) as pool:
        return sum(pool.map(_verifies, [seconds] * cores)) / seconds


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
    floor = _floor_rate()
    ceiling = floor / (floor + gpus * median["tdx-only"]["entries_per_s"])
    return {
        "durability": durability,
        "gpus_per_entry": gpus,
        "runs": runs,
        "median": median,
        "throughput_ratio_composite_over_tdx_only": round(ratio, 3),
        "p384_verifications_per_s_all_cores": round(floor),
        "ceiling_ratio_one_p384_verification_per_gpu": round(ceiling, 3),
        "ratio_over_ceiling": round(ratio / ceiling, 3),
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
