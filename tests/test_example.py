"""The PyTorch example pipeline runs end to end against a real server and verifies its deployed model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT_DIR, ServerProcess


def test_pytorch_pipeline_example(server: ServerProcess, tmp_path: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT_DIR / "examples" / "pytorch_pipeline.py"),
            "--server",
            server.url,
            "--vkey",
            server.vkey,
            "--workdir",
            str(tmp_path / "run"),
            "--simulated-platform",
            str(server.data_dir / "simulated-tdx"),
            "--samples",
            "4000",
            "--epochs",
            "5",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout)
    assert report["history_entries"] == [4, 3, 2]  # deploy, evaluate, train
    assert report["history_gap_free_from"] == 4 and report["history_complete"] is False
    assert report["upstream_edges"] >= 3 and report["accuracy"] > 0.8
    assert (tmp_path / "run" / "deploy.receipt.json").exists()
