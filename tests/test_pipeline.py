"""The pipeline SDK: streaming hashing, statements, quote providers, and record_step against a real server."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from atlas_log.client import LogClient
from atlas_log.errors import Error
from atlas_log.intoto import extract
from atlas_log.pipeline import (
    ConfigfsTsmProvider,
    evaluation_statement,
    hash_file,
    hash_tree,
    model_digest,
    model_statement,
    record_step,
    training_statement,
)
from atlas_log.receipt import Receipt, verify_receipt
from atlas_log.submission import INTOTO_PAYLOAD_TYPE
from atlas_log.tdx.binding import payload_report_data
from atlas_log.testing.simulate import SimulatedPlatform, SimulatedProvider
from tests.conftest import ServerProcess
from tests.vectors import vectors_dir


def test_streaming_hash_with_progress(tmp_path: Path) -> None:
    big = tmp_path / "weights.bin"
    with big.open("wb") as f:
        for _ in range(24):
            f.write(os.urandom(1 << 20))
    seen: list[tuple[int, int]] = []
    assert hash_file(big, lambda d, t: seen.append((d, t))) == hashlib.sha256(big.read_bytes()).hexdigest()
    assert len(seen) == 24 and seen[-1] == (24 << 20, 24 << 20)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_model_digest_matches_model_signing() -> None:
    d = vectors_dir("model-signing", "v1.1.0-elliptic-key")
    files = hash_tree(d, ignore=["ignore-me", "model.sig"])
    assert sorted(files) == ["signme-1", "signme-2"]
    bundle = json.loads((d / "model.sig").read_text())
    import base64

    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    assert statement["subject"][0]["digest"]["sha256"] == model_digest(files)
    ours = extract(INTOTO_PAYLOAD_TYPE, model_statement("m", files))
    assert ours.digests("subject") == [f"sha256:{model_digest(files)}"]


def test_configfs_tsm_provider_against_a_folder(tmp_path: Path) -> None:
    platform = SimulatedPlatform.create()
    rd = payload_report_data(INTOTO_PAYLOAD_TYPE, b"{}", b"spki")
    entry = tmp_path / "report" / "atlas-log"
    entry.mkdir(parents=True)
    quote = platform.quote(rd) + bytes(2000)  # the kernel's buffer is zero-padded
    (entry / "outblob").write_bytes(quote)
    got = ConfigfsTsmProvider(tmp_path / "report").quote(rd)
    assert got == quote and (entry / "inblob").read_bytes() == rd
    # The kernel bumps `generation` on every inblob write; a counter that does not move means the outblob
    # cannot be trusted to answer our inblob, and the provider refuses it.
    (entry / "generation").write_text("5\n")
    with pytest.raises(Error, match="kept writing"):
        ConfigfsTsmProvider(tmp_path / "report").quote(rd)


def test_record_step_end_to_end(server: ServerProcess, tmp_path: Path) -> None:
    data = tmp_path / "train.csv"
    data.write_text("x,y\n1,2\n")
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.bin").write_bytes(os.urandom(4096))
    files = hash_tree(model)
    key = Ed25519PrivateKey.generate()
    provider = SimulatedProvider(server.platform)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        client = LogClient(http, server.vkey)
        train = training_statement(
            {"model": model_digest(files)},
            {"train.csv": (hash_file(data), "training-data")},
            builder="https://example.com/pipeline/train",
            parameters={"epochs": 3},
        )
        r1 = record_step(client, key, train, provider, receipt_path=tmp_path / "receipts" / "train.json")
        saved = Receipt.from_json(json.loads((tmp_path / "receipts" / "train.json").read_text()))
        assert saved == r1 and verify_receipt(saved, server.vkey).size == 1
        ev = evaluation_statement(
            ("model", model_digest(files)), {"test.csv": hashlib.sha256(b"t").hexdigest()}, "PASSED", {"accuracy": 0.93}
        )
        r2 = record_step(client, key, ev, provider)
        assert r2.log_index == 1
        hist = http.get(f"/api/v1/artifacts/sha256:{model_digest(files)}/history").json()
        assert [e["logIndex"] for e in hist["entries"]] == [1, 0]


FAKE_NVATTEST = """#!{python}
# Stands in for NVIDIA's attestation CLI: NVIDIA's JSON document for the simulated GPU in {folder}.
import base64, json, sys
from pathlib import Path
from atlas_log.testing.simulated_gpu import SimulatedGpu
args = sys.argv[1:]
nonce = bytes.fromhex(args[args.index("--nonce") + 1])
gpu = SimulatedGpu.load(Path({folder!r}))
e = gpu.evidence(nonce)
print(json.dumps({{"evidences": [{{"version": "1.0", "arch": e.architecture, "nonce": nonce.hex(),
    "driver_version": gpu.driver_version, "evidence": base64.b64encode(e.report).decode(),
    "certificate": base64.b64encode(e.certificate_chain).decode()}}], "result_code": 0, "result_message": "Ok"}}))
"""


TEXT_UNLESS_ASKED = """args = sys.argv[1:]
if args[-2:] != ["--format", "json"]:
    print("GPU 0: evidence collected (use --format json for the document)")
    sys.exit(0)
args = args[:-2]"""


def test_nvattest_provider_collects_evidence_and_says_when_it_cannot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    from atlas_log.pipeline import NvattestGpuProvider
    from atlas_log.testing.simulated_gpu import SimulatedGpu

    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    with pytest.raises(Error, match="NVIDIA's attestation CLI\\) is not installed"):
        NvattestGpuProvider().gpu_evidence(bytes(32))
    gpu = SimulatedGpu.create()
    gpu.save(tmp_path / "gpu")
    tool = tmp_path / "bin" / "nvattest"
    tool.parent.mkdir()
    tool.write_text(FAKE_NVATTEST.format(python=sys.executable, folder=str(tmp_path / "gpu")))
    tool.chmod(0o755)
    nonce = os.urandom(32)
    (evidence,) = NvattestGpuProvider().gpu_evidence(nonce)
    assert evidence.nonce == nonce and evidence.architecture == "HOPPER"
    assert evidence.certificate_chain == gpu.certificate_chain
    tool.write_text("#!/bin/sh\necho 'NVML: no GPU in confidential computing mode' >&2\nexit 3\n")
    with pytest.raises(Error, match=r"without NVIDIA's JSON evidence document.*no GPU in confidential"):
        NvattestGpuProvider().gpu_evidence(nonce)
    tool.write_text('#!/bin/sh\necho \'{"evidences": [], "result_code": 7, "result_message": "NVML failed"}\'\n')
    with pytest.raises(Error, match="could not collect GPU evidence: NVML failed"):
        NvattestGpuProvider().gpu_evidence(nonce)
    # Version 1.0 of the CLI prints text unless asked for JSON (its global --format option).
    text_first = FAKE_NVATTEST.replace("args = sys.argv[1:]", TEXT_UNLESS_ASKED)
    tool.write_text(text_first.format(python=sys.executable, folder=str(tmp_path / "gpu")))
    (evidence,) = NvattestGpuProvider().gpu_evidence(nonce)
    assert evidence.nonce == nonce
    # What the CLI states beside a report must be what the report says.
    tool.write_text(
        FAKE_NVATTEST.replace('"driver_version": gpu.driver_version', '"driver_version": "1.2.3"').format(
            python=sys.executable, folder=str(tmp_path / "gpu")
        )
    )
    with pytest.raises(Error, match=r"states driver_version 1\.2\.3 but its report says 580\.0\.0"):
        NvattestGpuProvider().gpu_evidence(nonce)


def test_record_step_with_a_gpu_logs_a_composite_entry(server: ServerProcess, tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    statement = training_statement(
        {"model": hashlib.sha256(b"weights").hexdigest()},
        {"train.csv": (hashlib.sha256(b"rows").hexdigest(), "training-data")},
        builder="https://example.com/pipeline/train",
    )
    with httpx.Client(base_url=server.url, timeout=30) as http:
        client = LogClient(http, server.vkey)
        with pytest.raises(Error, match="give a quote provider too"):
            record_step(client, key, statement, None, gpus=server.gpu)
        receipt = record_step(client, key, statement, SimulatedProvider(server.platform), gpus=server.gpu)
        tee = json.loads(receipt.leaf)["body"]["tee"]
        assert tee["binding"] == "atlas-log/tdx-gpu-bind/v1" and tee["gpus"][0]["measurements"] == "matched"
