"""The PyTorch example pipeline at full size against a real server: share of time spent on provenance
(hashing, statements, signing, attesting, submitting) relative to training (target < 1%)."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

from bench.common import ROOT, Server, fresh_database, report


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="atlas-bench-example-"))
    server = Server(fresh_database("atlas_bench_example"), tmp / "data")
    try:
        vkey = httpx.get(server.url + "/api/v1/log").json()["verifierKey"]
        out = subprocess.run(
            [
                sys.executable,
                str(ROOT / "examples" / "pytorch_pipeline.py"),
                "--server",
                server.url,
                "--vkey",
                vkey,
                "--workdir",
                str(tmp / "run"),
                "--simulated-platform",
                str(tmp / "data" / "simulated-tdx"),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        server.stop()
    result = json.loads(out.stdout)
    report("example", {**result, "target_share": 0.01, "target_met": result["provenance_share_of_training"] < 0.01})


if __name__ == "__main__":
    main()
