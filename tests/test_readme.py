"""The README's commands, run as printed against a real development log: the walkthrough of a first pipeline,
the auditor's offline replay, and the commands `make run` suggests. Placeholders the README names (the key and
the simulated root `make run` prints) are filled with this log's."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from atlas_log.testing.demo import demo_submission
from tests.conftest import ServerProcess

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _block_after(heading: str) -> list[str]:
    """The command lines of the first fenced block after ``heading``."""
    at = README.index(heading)
    block = re.search(r"```(?:sh)?\n(.*?)```", README[at:], re.DOTALL)
    assert block is not None, heading
    return [line for line in block.group(1).splitlines() if line.strip() and not line.startswith("#")]


@pytest.fixture
def log(db_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(db_url, tmp_path / "data")
    yield server
    server.stop()


def _run(lines: list[str], log: ServerProcess, cwd: Path, index: int = 0) -> subprocess.CompletedProcess[str]:
    """The lines as one shell script (so an export holds for the next line), stopping at the first failure."""
    gpu = httpx.get(log.url + "/api/v1/log").json()["attestation"]["gpu"]
    placeholders = {
        "<the verifier key make run printed>": log.vkey,
        "<the simulated TDX root make run printed>": log.platform.root_fingerprint,
        "<the simulated GPU device root make run printed>": gpu["deviceRoot"],
        "<the simulated GPU RIM root make run printed>": gpu["rimRoot"],
        "<the index submit printed>": str(index),
    }
    filled = []
    for line in lines:
        for placeholder, value in placeholders.items():
            line = line.replace(placeholder, value)
        # This log's port is not make run's: its address stands where the README gives that one, as a user
        # who started on another port would write it.
        filled.append(line.replace("http://127.0.0.1:8080", log.url))
    # The venv's activate script puts atlas-log on the PATH: here it is this interpreter's folder.
    script = "\n".join(
        f'export PATH="{Path(sys.executable).parent}:$PATH"' if line.startswith(". .venv/bin/activate") else line
        for line in filled
    )
    env = {**os.environ, "ATLAS_DATA_DIR": str(log.data_dir)}
    env.pop("ATLAS_LOG_VKEY", None)
    env.pop("ATLAS_LOG_URL", None)  # the README's own lines name the log
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_the_first_pipeline_walkthrough_runs_as_printed(log: ServerProcess, tmp_path: Path) -> None:
    # As after the banner's demo with GPU evidence: the audit must trust the simulated GPU's roots too.
    entry = demo_submission(Ed25519PrivateKey.generate(), 0, log.platform, gpus=log.gpu)
    assert httpx.post(log.url + "/api/v1/entries", json=entry, timeout=30).status_code == 201
    work = tmp_path / "work"
    shutil.copytree(ROOT / "examples", work / "examples")
    lines = _block_after("### Your first pipeline, step by step")
    assert any(line.startswith("atlas-log submit") for line in lines)
    out = _run(lines, log, work, index=1)  # after the demo entry
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "logged at index 1" in out.stdout
    assert "OK   first.receipt.json: entry 1" in out.stdout
    assert "sentiment-classifier" in out.stdout and "reviews-dataset" in out.stdout  # history and lineage name them
    assert "verified: ok" in out.stdout and "every one re-verified" in out.stdout  # the auditor's replay: all well
    assert (work / "pipeline.key").stat().st_mode & 0o777 == 0o600


def test_the_auditors_offline_replay_runs_as_printed(log: ServerProcess, tmp_path: Path) -> None:
    entry = demo_submission(Ed25519PrivateKey.generate(), 0, log.platform)
    assert httpx.post(log.url + "/api/v1/entries", json=entry, timeout=30).status_code == 201
    lines = _block_after("Auditors replay any entry offline:")
    # In the walkthrough's shell: the log's address and key exported.
    exports = [line for line in _block_after("### Your first pipeline, step by step") if line.startswith("export")]
    out = _run([". .venv/bin/activate", *exports, *lines], log, tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "ACCEPTED" in out.stdout


def test_the_commands_make_run_suggests_run(log: ServerProcess, tmp_path: Path) -> None:
    lines = [
        line.replace(".venv/bin/atlas-log", "atlas-log")
        .replace("http://127.0.0.1:8080", log.url)
        .replace("'atlas-log.localhost/dev+…'", "'<the verifier key make run printed>'")
        .replace("--tdx-root 3f2a…", "--tdx-root '<the simulated TDX root make run printed>'")
        .replace("--gpu-device-root 9c41…", "--gpu-device-root '<the simulated GPU device root make run printed>'")
        .replace("--gpu-rim-root e7a0…", "--gpu-rim-root '<the simulated GPU RIM root make run printed>'")
        for line in _block_after("`make run` prints the log's verifier key")
        if "atlas-log" in line and not line.startswith("http")
    ]
    assert len(lines) == 3
    out = _run([". .venv/bin/activate", *lines], log, tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "OK   ./receipts/" in out.stdout and "every one re-verified" in out.stdout


def test_the_client_library_example_runs_as_printed(log: ServerProcess, tmp_path: Path) -> None:
    at = README.index("## Client library")
    block = re.search(r"```python\n(.*?)```", README[at:], re.DOTALL)
    assert block is not None
    code = block.group(1).replace("<the verifier key make run printed>", log.vkey)
    r = httpx.post(log.url + "/api/v1/entries", json=demo_submission(Ed25519PrivateKey.generate(), 0, log.platform))
    (tmp_path / "first.receipt.json").write_text(r.text)
    (tmp_path / "example.py").write_text(code)
    env = {**os.environ, "ATLAS_LOG_URL": log.url}  # as the walkthrough exported it
    out = subprocess.run(
        [sys.executable, "example.py"], cwd=tmp_path, capture_output=True, text=True, timeout=60, env=env
    )
    assert out.returncode == 0, out.stderr
    assert "entry 0 is in the tree of size 1; the log is now at 1" in out.stdout
    assert (tmp_path / "trusted.json").exists()
    # Given the file's text rather than its JSON, the library says what it wants.
    from atlas_log import verify_receipt
    from atlas_log.errors import FormatError

    with pytest.raises(FormatError, match=r"a receipt is a JSON object \(parsed, e\.g\. with json\.loads\), not str"):
        verify_receipt(r.text, log.vkey)  # type: ignore[arg-type]


def test_the_confidential_walkthrough_runs_as_printed(log: ServerProcess, tmp_path: Path) -> None:
    work = tmp_path / "work"
    shutil.copytree(ROOT / "examples", work / "examples")
    (work / ".atlas-log").symlink_to(log.data_dir)  # the development log's folder, as under `make run`
    first = _block_after("### Your first pipeline, step by step")
    setup = [line for line in first if line.startswith((". .venv", "export", "atlas-log keygen"))]
    lines = _block_after("### Confidential entries")
    out = _run([*setup, *lines], log, work)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "warning: no tenant token" not in out.stderr
    assert "logged at index 0" in out.stdout
    assert "s3://example-bucket/datasets/reviews-v3" in out.stdout and "0.0005" in out.stdout  # verified, shown
    public = httpx.get(log.url + "/api/v1/entries/0").text  # what anyone reads: neither hidden value
    assert "s3://example-bucket" not in public and "learningRate" not in public
    # Nor does any other example state them in the open (the first pipeline's statement is logged openly).
    opened = (ROOT / "examples" / "first-statement.json").read_text()
    assert "reviews-v3" not in opened and "0.0005" not in opened
    # A mistake at the admin API (a tenant's name mistyped) shows the log's answer, not a traceback.
    helpers = [line for line in lines if line.startswith(("admin()", "token()"))]
    exports = [line for line in setup if line.startswith((". .venv", "export"))]
    mistyped = """admin POST tenants/vendr/tokens '{"scopes": ["submit"]}' | token typo.token"""
    typo = _run([*exports, *helpers, mistyped], log, work)
    assert typo.returncode != 0 and "no tenant 'vendr'" in typo.stderr and "Traceback" not in typo.stderr, typo.stderr
    assert not (work / "typo.token").exists()  # no empty token file left behind
    # The tokens are secrets: readable by their owner only.
    for name in ("vendor.token", "grant.token"):
        assert oct((work / name).stat().st_mode & 0o777) == "0o600", name
    mixed_up = _run([*exports, "atlas-log verify hidden-entry.json"], log, work)  # not a receipt
    assert mixed_up.returncode == 1 and "this is a disclosure file, not a receipt" in mixed_up.stdout
    # Hidden values submitted without a tenant's token would be readable by the admin alone: the tool says so.
    tokenless = [
        line.replace(" --token-file vendor.token", "") for line in lines if line.startswith("atlas-log submit")
    ]
    out = _run([*exports, *tokenless, "  --confidential predicate.runDetails.metadata.invocationId"], log, work)
    assert out.returncode == 0 and "warning: no tenant token" in out.stderr, out.stderr
