"""What confidential entries cost, in one run against public entries on the same code.

- ``admission``: attested admission over HTTP (as ``bench/admission.py``: simulated quotes, full TDX
  verification, a PostgreSQL commit per batch, fsync and synchronous_commit as the server has them), public
  training statements against the same statements with their dataset location, hyper-parameters and input URIs
  hidden (three disclosures each, sealed by the log), alternating rounds (target: within 10 %).
- ``reads``: disclosure reads per second by a grant holder (``GET /api/v1/entries/{i}/disclosures``: the token
  checked, the row read, the data key unwrapped, the disclosures decrypted, the read recorded).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from atlas_log.disclosure import redact
from atlas_log.intoto import SLSA_V1
from atlas_log.submission import signed_submission
from atlas_log.testing.simulate import SimulatedPlatform
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

ADMIN = "atladm_bench-confidential-0123456789"
HIDDEN = [
    "predicate.buildDefinition.externalParameters.dataset",
    "predicate.buildDefinition.externalParameters.hyperparameters",
    "predicate.buildDefinition.resolvedDependencies[*].uri",
]


def _statement(n: int) -> dict[str, Any]:
    return {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": f"model-{n}", "digest": {"sha256": hashlib.sha256(b"model %d" % n).hexdigest()}}],
        "predicateType": SLSA_V1,
        "predicate": {
            "buildDefinition": {
                "buildType": "https://atlas-log.dev/ml/training/v1",
                "externalParameters": {
                    "dataset": f"s3://vendor/datasets/run-{n}",
                    "hyperparameters": {"learningRate": 0.001, "epochs": 3, "batch": 64},
                },
                "resolvedDependencies": [
                    {
                        "name": "train",
                        "uri": f"s3://vendor/train/{n}",
                        "digest": {"sha256": hashlib.sha256(b"data %d" % n).hexdigest()},
                    }
                ],
            },
            "runDetails": {"builder": {"id": "https://example.com/trainer"}},
        },
    }


def _submission(key: Ed25519PrivateKey, n: int, platform: SimulatedPlatform, confidential: bool) -> dict[str, Any]:
    statement, disclosures = redact(_statement(n), HIDDEN) if confidential else (_statement(n), ())
    payload = json.dumps(statement, separators=(",", ":")).encode()
    return signed_submission(key, payload, platform, disclosures=disclosures)


def _admission(rounds: int, entries: int, duration: float) -> dict[str, Any]:
    durability: dict[str, str] = {}

    def run(name: str) -> Run:
        nonlocal durability
        tmp = Path(tempfile.mkdtemp(prefix="atlas-bench-confidential-"))
        url = fresh_database("atlas_bench_confidential")
        durability = _durability(url)
        server = Server(url, tmp / "data", workers=2, ATLAS_MAP_INTERVAL_S="0")
        platform = SimulatedPlatform.load(tmp / "data" / "simulated-tdx")
        key = Ed25519PrivateKey.generate()
        reqs = write_submissions(
            tmp / "entries.jsonl", (_submission(key, i, platform, name == "confidential") for i in range(entries))
        )
        try:
            return admission_run(loadgen(server.url, reqs, 64, duration, warmup=1000))
        finally:
            server.stop()

    runs = alternating(rounds, ("confidential", "public"), run)
    median = medians(runs)
    ratio = median["confidential"]["entries_per_s"] / median["public"]["entries_per_s"]
    return {
        "durability": durability,
        "runs": runs,
        "median": median,
        "throughput_ratio_confidential_over_public": round(ratio, 3),
        "throughput_target_met": ratio >= 0.9,
    }


def _reads(entries: int, duration: float) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="atlas-bench-disclosure-reads-"))
    server = Server(
        fresh_database("atlas_bench_disclosure_reads"),
        tmp / "data",
        workers=2,
        ATLAS_MAP_INTERVAL_S="0",
        ATLAS_ADMIN_TOKEN_SHA256=hashlib.sha256(ADMIN.encode()).hexdigest(),
    )
    try:
        platform = SimulatedPlatform.load(tmp / "data" / "simulated-tdx")
        key = Ed25519PrivateKey.generate()
        admin = {"Authorization": f"Bearer {ADMIN}"}
        with httpx.Client(base_url=server.url, timeout=60) as http:
            assert http.put("/admin/v1/tenants/vendor", json={"ratePerSecond": 1e5, "burst": 10**5}, headers=admin)
            vendor = http.post("/admin/v1/tenants/vendor/tokens", json={}, headers=admin).json()["token"]
            for i in range(entries):
                r = http.post(
                    "/api/v1/entries",
                    json=_submission(key, i, platform, True),
                    headers={"Authorization": f"Bearer {vendor}"},
                )
                assert r.status_code == 201, r.text
            grant = http.post("/admin/v1/tenants/vendor/grants", json={"holder": "bench"}, headers=admin).json()
        reqs = tmp / "reads.jsonl"
        with reqs.open("w") as f:
            for i in range(200_000):
                req = {
                    "method": "GET",
                    "path": f"/api/v1/entries/{i % entries}/disclosures",
                    "headers": {"Authorization": f"Bearer {grant['token']}"},
                }
                f.write(json.dumps(req) + "\n")
        result = loadgen(server.url, reqs, 32, duration, warmup=500)
    finally:
        server.stop()
    return {
        "entries": entries,
        "reads_per_s": result["rps"],
        "p50_ms": result["latency_ms"]["p50"],
        "p99_ms": result["latency_ms"]["p99"],
        "statuses": result.get("statuses"),
        "note": "each read is recorded in the tenant's access log (one INSERT per read)",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="*", choices=["admission", "reads"], default=None)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--entries", type=int, default=30_000, help="submissions prepared per admission run")
    ap.add_argument("--duration", type=float, default=20)
    args = ap.parse_args()
    only = set(args.only or ["admission", "reads"])
    result: dict[str, Any] = {}
    if "admission" in only:
        result["admission"] = _admission(args.rounds, args.entries, args.duration)
    if "reads" in only:
        result["reads"] = _reads(500, args.duration)
    report("confidential", result)


if __name__ == "__main__":
    main()
