"""The PyTorch example pipeline runs end to end against a real server and verifies its deployed model; its
training step keeps the dataset path and learning rate confidential, and a regulator's grant reads them back."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx

from atlas_log.client import LogClient
from tests.conftest import ROOT_DIR, ServerProcess, free_port

ADMIN = "atladm_example-admin-0123456789"


def test_pytorch_pipeline_example(db_url: str, tmp_path: Path) -> None:
    server = ServerProcess(
        db_url, tmp_path / "data", env={"ATLAS_ADMIN_TOKEN_SHA256": hashlib.sha256(ADMIN.encode()).hexdigest()}
    )
    try:
        admin = {"Authorization": f"Bearer {ADMIN}"}
        with httpx.Client(base_url=server.url, timeout=30) as http:
            assert http.put(
                "/admin/v1/tenants/vendor", json={"ratePerSecond": 50, "burst": 50}, headers=admin
            ).is_success
            token = tmp_path / "vendor.token"
            token.write_text(http.post("/admin/v1/tenants/vendor/tokens", json={}, headers=admin).json()["token"])
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
                "--token-file",
                str(token),
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert out.returncode == 0, out.stderr[-3000:]
        assert "training: epoch 5/5" in out.stderr  # progress without a terminal too
        assert "the tenant of --token-file and its grants read them" in out.stderr  # what is hidden, and for whom
        report = json.loads(out.stdout)
        assert report["history_entries"] == [4, 3, 2]  # deploy, evaluate, train
        assert report["history_gap_free_from"] == 4 and report["history_complete"] is False
        assert report["upstream_edges"] >= 3 and report["accuracy"] > 0.8
        assert (tmp_path / "run" / "deploy.receipt.json").exists()
        # The training step's dataset path and learning rate are not public...
        dataset = str((tmp_path / "run" / "clean.pt").resolve())
        assert dataset not in httpx.get(f"{server.url}/api/v1/entries/2").text
        # ...and a regulator holding the vendor's grant reads them back, verified against the signed statement.
        with httpx.Client(base_url=server.url, timeout=30) as http:
            grant = http.post("/admin/v1/tenants/vendor/grants", json={"holder": "regulator"}, headers=admin).json()
        with LogClient(server.url, server.vkey, token=grant["token"]) as regulator:
            revealed = dict(regulator.disclosures(2).revealed.disclosed)
        prefix = "$.predicate.buildDefinition.externalParameters.parameters."
        assert revealed[prefix + "datasetPath"].value == dataset
        assert revealed[prefix + "learningRate"].value == 1e-3
        # Away from the development server's folder, the example says where the platform is looked for.
        away = subprocess.run(
            [sys.executable, str(ROOT_DIR / "examples" / "pytorch_pipeline.py"), "--server", server.url],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
            env={k: v for k, v in os.environ.items() if k != "ATLAS_DATA_DIR"},
        )
        assert away.returncode == 1 and "Traceback" not in away.stderr, away.stderr
        assert "no simulated TDX platform in .atlas-log/simulated-tdx" in away.stderr
        # A log that is not there is one line naming it, not a traceback.
        nowhere = f"http://127.0.0.1:{free_port()}"
        platform = ["--simulated-platform", str(server.data_dir / "simulated-tdx"), "--samples", "100", "--epochs", "1"]
        unreachable = subprocess.run(
            [sys.executable, str(ROOT_DIR / "examples" / "pytorch_pipeline.py"), "--server", nowhere, *platform],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
            env={**os.environ, "ATLAS_LOG_RETRY_DEADLINE": "1"},
        )
        assert unreachable.returncode == 1 and "Traceback" not in unreachable.stderr, unreachable.stderr
        assert f"cannot reach the log at {nowhere}/" in unreachable.stderr and "--server" in unreachable.stderr
    finally:
        server.stop()
