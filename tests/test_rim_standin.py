"""The local RIM service stand-in: NVIDIA's paths and JSON shape, serving a simulated GPU's RIMs (which then
verify the GPU's evidence) and a folder of RIM files byte for byte."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from atlas_log.gpu.rim import parse_rim
from atlas_log.gpu.verification import verify_gpu_evidence, verify_rim
from atlas_log.testing import SimulatedGpu
from atlas_log_server.attest.dev import start_simulated_rim_service
from atlas_log_server.attest.rim_standin import create_rim_standin_app, folder_rims, simulated_rims
from tests.vectors import vectors_dir

NOW = 1_800_000_000
NONCE = bytes(range(32))
UPDATED = dt.datetime(2026, 3, 14, 15, 9, 3, 11000, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def gpu() -> SimulatedGpu:
    return SimulatedGpu.create(NOW)


async def _get(app: Any, path: str) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://rim.test") as http:
        return await http.get(path)


def _rim_of(answer: httpx.Response, rim_id: str) -> bytes:
    """The RIM in an answer, after checking the answer has exactly the real service's shape."""
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    body = answer.json()
    assert set(body) == {"id", "rim", "sha256", "last_updated", "rim_format", "request_id"}
    assert body["id"] == rim_id and body["rim_format"] == "TCG"
    assert body["last_updated"] == "2026-03-14T15:09:03.011000"
    uuid.UUID(body["request_id"])
    document = base64.b64decode(body["rim"], validate=True)
    assert body["sha256"] == hashlib.sha256(document).hexdigest()
    return document


async def test_the_rims_a_report_asks_for_verify_it(gpu: SimulatedGpu) -> None:
    app = create_rim_standin_app(simulated_rims([gpu]), last_updated=UPDATED)
    report = gpu.report(NONCE)
    unchecked = verify_gpu_evidence(
        report, gpu.certificate_chain, nonce=NONCE, at=NOW, device_root=gpu.device_root, rim_root=gpu.rim_root
    )
    assert unchecked.driver_rim_id is not None and unchecked.vbios_rim_id is not None
    driver = _rim_of(await _get(app, f"/v1/rim/{unchecked.driver_rim_id}"), unchecked.driver_rim_id)
    vbios = _rim_of(await _get(app, f"/v1/rim/{unchecked.vbios_rim_id}"), unchecked.vbios_rim_id)
    verdict = verify_gpu_evidence(
        report,
        gpu.certificate_chain,
        nonce=NONCE,
        at=NOW,
        driver_rim=driver,
        vbios_rim=vbios,
        device_root=gpu.device_root,
        rim_root=gpu.rim_root,
    )
    assert verdict.accept and verdict.measurements_checked, verdict.failures


async def test_ids_lists_every_rim(gpu: SimulatedGpu) -> None:
    blackwell = SimulatedGpu.create(NOW, architecture="BLACKWELL", driver_version="581.0.0", project="SIM1")
    app = create_rim_standin_app(simulated_rims([gpu, gpu.sibling(NOW), blackwell]), last_updated=UPDATED)
    answer = await _get(app, "/v1/rim/ids")
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {"ids", "request_id", "last_updated"}
    assert body["ids"] == sorted([*gpu.rim_ids, *blackwell.rim_ids])
    assert "NV_GPU_CC_DRIVER_GB100_581.0.0" in body["ids"]


def test_gpus_under_different_roots_cannot_share_a_rim_id(gpu: SimulatedGpu) -> None:
    with pytest.raises(ValueError, match="different CoRIM roots"):
        simulated_rims([gpu, SimulatedGpu.create(NOW)])


async def test_an_unknown_id_is_a_404_problem(gpu: SimulatedGpu) -> None:
    answer = await _get(create_rim_standin_app(simulated_rims([gpu])), "/v1/rim/NV_GPU_DRIVER_GH100_1.0")
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["status"] == 404 and "NV_GPU_DRIVER_GH100_1.0" in answer.json()["detail"]


async def test_a_folder_of_real_rims_is_served_byte_for_byte() -> None:
    folder = vectors_dir("nvidia", "rims")
    rims = folder_rims(folder)
    assert "NV_GPU_DRIVER_GH100_550.144.03" in rims and "Driver_RIM_test_no_gpu" in rims
    assert not any(name.startswith("rims") or name.endswith("root") for name in rims)  # .json, .crt skipped
    app = create_rim_standin_app(rims, last_updated=UPDATED)
    rim_id = "NV_GPU_DRIVER_GH100_550.144.03"
    document = _rim_of(await _get(app, f"/v1/rim/{rim_id}"), rim_id)
    assert document == (folder / f"{rim_id}.xml").read_bytes()
    # NVIDIA's RIM verifies under NVIDIA's pinned CoRIM root inside its window (2024-12-30 .. 2026-12-30).
    assert parse_rim(document).version == "550.144.03"
    assert verify_rim(document, at=1_767_225_600) == ()


async def test_a_folder_of_simulated_rims(gpu: SimulatedGpu, tmp_path: Path) -> None:
    for rim_id, document in gpu.rims().items():
        (tmp_path / f"{rim_id}.xml").write_bytes(document)
    (tmp_path / "notes.txt").write_text("not a RIM")
    assert sorted(folder_rims(tmp_path)) == sorted(gpu.rim_ids)


def test_the_dev_service_serves_the_simulated_gpu(gpu: SimulatedGpu) -> None:
    url = start_simulated_rim_service(gpu)
    driver_id, vbios_id = gpu.rim_ids
    with httpx.Client(base_url=url, timeout=10) as http:
        documents = [base64.b64decode(http.get(f"/v1/rim/{i}").json()["rim"]) for i in (driver_id, vbios_id)]
        assert http.get("/v1/rim/unknown").status_code == 404
    verdict = verify_gpu_evidence(
        gpu.report(NONCE),
        gpu.certificate_chain,
        nonce=NONCE,
        at=NOW,
        driver_rim=documents[0],
        vbios_rim=documents[1],
        device_root=gpu.device_root,
        rim_root=gpu.rim_root,
    )
    assert verdict.accept, verdict.failures
