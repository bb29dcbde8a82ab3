"""Loading GPU evidence from files (case folders, NVIDIA's serialized JSON, RIM files), the command line's
entry point, and the gpu package's public names."""

from __future__ import annotations

import base64
import dataclasses
import json
from pathlib import Path

import pytest

import atlas_log.gpu
from atlas_log.errors import FormatError, GpuEvidenceError
from atlas_log.gpu import verify_gpu_evidence
from atlas_log.gpu.evidence import load_gpu_evidence, load_rims, parse_serialized_evidence, verify_gpu_evidence_path
from tests.vectors import vectors_dir

NOW = 1767225600


def test_public_names_are_pinned() -> None:
    assert atlas_log.gpu.__all__ == sorted(atlas_log.gpu.__all__, key=lambda n: (not n.isupper(), n))
    assert set(atlas_log.gpu.__all__) == {
        "CORIM_ROOT_SHA256",
        "DEVICE_IDENTITY_ROOT_SHA256",
        "FAILURE_ORDER",
        "AttestationReport",
        "GpuEvidence",
        "GpuVerdict",
        "Policy",
        "Rim",
        "RimCheck",
        "load_gpu_evidence",
        "load_rims",
        "parse_report",
        "parse_rim",
        "verify_gpu_evidence",
        "verify_gpu_evidence_path",
        "verify_rim",
    }
    assert issubclass(GpuEvidenceError, FormatError)


def test_case_folder() -> None:
    folder = vectors_dir("nvidia", "hopper-580-valid")
    [item] = load_gpu_evidence(folder)
    assert item.nonce is not None and item.nonce.hex() == (folder / "nonce.hex").read_text().strip()
    [verdict] = verify_gpu_evidence_path(folder, at=NOW)
    assert verdict.accept and verdict.driver_version == "580.159.03"


def test_case_folder_with_the_chosen_nonce() -> None:
    folder = vectors_dir("nvidia", "hopper-535-nonce-mismatch")
    [verdict] = verify_gpu_evidence_path(folder, at=NOW, nonce=bytes(32))
    assert verdict.code == "nonce_mismatch"


def test_serialized_file_with_rims_sorted_by_kind() -> None:
    base = vectors_dir("nvidia")
    [verdict] = verify_gpu_evidence_path(
        base / "hopper-545-rim-match",
        at=1700000000,
        rims=[
            base / "rims" / "1010_0200_882_96005E0001_test_no_gpu.swidtag",
            base / "rims" / "Driver_RIM_test_no_gpu.swidtag",
        ],
    )
    assert verdict.accept and verdict.measurements_checked
    driver, vbios = load_rims([base / "rims" / "Driver_RIM_test_no_gpu.swidtag"])
    assert driver is not None and vbios is None


def test_serialized_evidence_for_several_gpus() -> None:
    path = vectors_dir("nvidia", "serialized") / "hopper_evidence.json"
    items = json.loads(path.read_text())
    chosen = bytes.fromhex(items[0]["nonce"])
    doubled = json.dumps(items * 2).encode()
    parsed = parse_serialized_evidence(doubled)
    assert len(parsed) == 2 and parsed[1].architecture == "HOPPER"
    verdicts = verify_gpu_evidence_path(path, at=NOW, nonce=chosen)
    assert [v.accept for v in verdicts] == [True]
    assert verify_gpu_evidence_path(path, at=NOW, nonce=bytes(32))[0].code == "nonce_mismatch"


def test_serialized_architecture_must_match_the_chain() -> None:
    path = vectors_dir("nvidia", "serialized") / "hopper_evidence.json"
    items = json.loads(path.read_text())
    items[0]["arch"] = "BLACKWELL"
    [item] = parse_serialized_evidence(json.dumps(items).encode())
    verdict = verify_gpu_evidence(
        item.report, item.certificate_chain, nonce=item.nonce or b"", at=NOW, architecture=item.architecture
    )
    assert verdict.code == "architecture_mismatch"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"{}",
        b"[]",
        b'[{"arch": "HOPPER"}]',
        json.dumps([{"arch": "VOLTA", "nonce": "00" * 32, "evidence": "", "certificate": ""}]).encode(),
        json.dumps([{"arch": "HOPPER", "nonce": "00", "evidence": "", "certificate": ""}]).encode(),
        json.dumps([{"arch": "HOPPER", "nonce": "00" * 32, "evidence": "!!", "certificate": ""}]).encode(),
        json.dumps([{"arch": "HOPPER", "nonce": "00" * 32, "evidence": "", "certificate": "", "x": 1}]).encode(),
        json.dumps({"evidences": "x", "result_code": 0}).encode(),
        json.dumps({"evidence": []}).encode(),
        # Members of another JSON type than text, each where the parser looks it up.
        *(
            json.dumps([{"arch": "HOPPER", "nonce": "00" * 32, "evidence": "", "certificate": "", **bad}]).encode()
            for bad in (
                {"arch": ["HOPPER"]},
                {"arch": {"a": 1}},
                {"arch": 7},
                {"evidence": ["AA=="]},
                {"certificate": {"a": 1}},
                {"nonce": None},
            )
        ),
    ],
)
def test_malformed_serialized_evidence(data: bytes) -> None:
    with pytest.raises(GpuEvidenceError) as info:
        parse_serialized_evidence(data)
    assert info.value.code == "parse_error"


def _nvattest_document(items: list[dict[str, str]], **extra: str) -> dict[str, object]:
    """What ``nvattest collect-evidence`` prints (NVIDIA Attestation CLI): the items with the fields newer
    versions state beside each report, in a document with the SDK's result code."""
    return {"evidences": [{"version": "1.0", **i, **extra} for i in items], "result_code": 0, "result_message": "Ok"}


def test_the_attestation_clis_saved_output_is_evidence(tmp_path: Path) -> None:
    path = vectors_dir("nvidia", "serialized") / "evidence_hopper_590_12.json"
    items = json.loads(path.read_text())
    [expected] = parse_serialized_evidence(path.read_bytes())
    saved = tmp_path / "nvattest.json"
    saved.write_text(json.dumps(_nvattest_document(items, driver_version="590.12", vbios_version="96.00.A5.00.01")))
    assert load_gpu_evidence(saved) == [dataclasses.replace(expected, source=f"{saved}[0]")]
    chosen = bytes.fromhex(items[0]["nonce"])
    assert [v.accept for v in verify_gpu_evidence_path(saved, at=NOW, nonce=chosen)] == [True]
    # The SDK's evidence-file schema spells the architecture "Hopper"; it is the same GPU.
    mixed = [{**items[0], "arch": "Hopper"}]
    [item] = parse_serialized_evidence(json.dumps(mixed).encode())
    assert item.architecture == "HOPPER"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"driver_version": "575.03"}, "states driver_version 575.03 but its report says 590.12"),
        ({"vbios_version": "96.00.00.00.01"}, "states vbios_version 96.00.00.00.01 but its report says"),
        ({"version": "2.0"}, "evidence format version 2.0"),
        ({"driver_version": 590}, "driver_version must be text"),
    ],
)
def test_what_the_cli_states_beside_a_report_must_agree_with_it(change: dict[str, object], message: str) -> None:
    items = json.loads((vectors_dir("nvidia", "serialized") / "evidence_hopper_590_12.json").read_text())
    document = _nvattest_document(items)
    document["evidences"][0].update(change)  # type: ignore[index]
    with pytest.raises(GpuEvidenceError, match=message) as info:
        parse_serialized_evidence(json.dumps(document).encode())
    assert info.value.code == "parse_error"


def test_a_failed_collection_is_no_evidence() -> None:
    document = {"evidences": [], "result_code": 7, "result_message": "NVML failed"}
    with pytest.raises(GpuEvidenceError, match="result code 7: NVML failed"):
        parse_serialized_evidence(json.dumps(document).encode())


def test_missing_files_are_parse_errors(tmp_path: Path) -> None:
    with pytest.raises(GpuEvidenceError, match=r"report\.txt"):
        load_gpu_evidence(tmp_path)
    (tmp_path / "report.txt").write_text("zz")
    (tmp_path / "certchain.pem").write_text("")
    with pytest.raises(GpuEvidenceError, match="parse_error"):
        load_gpu_evidence(tmp_path)


def test_folder_without_nonce_needs_the_chosen_one(tmp_path: Path) -> None:
    source = vectors_dir("nvidia", "hopper-580-valid")
    for name in ("report.txt", "certchain.pem"):
        (tmp_path / name).write_bytes((source / name).read_bytes())
    with pytest.raises(GpuEvidenceError, match="nonce"):
        verify_gpu_evidence_path(tmp_path, at=NOW)
    chosen = bytes.fromhex((source / "nonce.hex").read_text().strip())
    assert verify_gpu_evidence_path(tmp_path, at=NOW, nonce=chosen)[0].accept


def test_base64_certificate_round_trip() -> None:
    path = vectors_dir("nvidia", "serialized") / "evidence_hopper_590_12.json"
    [item] = load_gpu_evidence(path)
    assert item.certificate_chain.startswith(b"-----BEGIN CERTIFICATE-----")
    assert base64.b64encode(item.report).decode() == json.loads(path.read_text())[0]["evidence"]


def test_the_command_line_verifies_gpu_evidence(capsys: pytest.CaptureFixture[str]) -> None:
    """`atlas-log gpu verify` on NVIDIA's evidence: accepted (exit 0), a wrong nonce rejected with its code
    (exit 1), the verdict as JSON; malformed evidence is one line (exit 2)."""
    from atlas_log import cli

    nvidia = vectors_dir("nvidia")
    good = nvidia / "hopper-580-valid"
    assert cli.main(["gpu", "verify", str(good), "--at", str(NOW)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ACCEPTED: HOPPER, driver ")
    # What the verdict rests on, and what it was not given to check.
    assert "checked: report signature, nonce, device chain; not checked: measurements (no --rim), revocation" in out
    assert cli.main(["gpu", "verify", str(good), "--at", str(NOW), "--nonce", "00" * 32, "--json"]) == 1
    verdict = json.loads(capsys.readouterr().out)
    assert verdict["accept"] is False and verdict["code"] == "nonce_mismatch"
    assert cli.main(["gpu", "verify", str(nvidia / "README.md"), "--at", str(NOW)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("atlas-log: ")
    # Mistakes in the options are one line each, saying what to give.
    for options, said in (
        (["--nonce", "00"], "--nonce must be 32 bytes (64 hex digits), not 1"),
        (["--nonce", "zz" * 32], "--nonce must be 32 bytes (64 hex digits)"),
        (["--gpu-rim-root", "ab" * 32], "--gpu-rim-root needs the RIMs it is the root of: give them with --rim FILE"),
    ):
        assert cli.main(["gpu", "verify", str(good), "--at", str(NOW), *options]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and said in err[0], err


def test_the_collection_digest_binds_every_field_and_ignores_only_spelling() -> None:
    """What a composite REPORTDATA commits to: each GPU's architecture, nonce, report and chain, in order;
    base64 padding, hex case or member order of the JSON do not change it, and no boundary can shift."""
    import dataclasses

    from atlas_log.gpu.evidence import collection_sha256, parse_evidence_items, serialize_evidence
    from atlas_log.testing.simulated_gpu import SimulatedGpu

    gpu = SimulatedGpu.create()
    nonce = bytes(range(32))
    a, b = gpu.evidence(nonce), gpu.sibling().evidence(nonce)
    digest = collection_sha256([a, b])
    items = serialize_evidence([a, b])
    # Other hex case, members in another order.
    respelled = [
        {
            "nonce": i["nonce"].upper(),
            "certificate": i["certificate"],
            "evidence": i["evidence"],
            "arch": i["arch"],
        }
        for i in items
    ]
    assert collection_sha256(parse_evidence_items(respelled)) == digest
    changed = [
        [b, a],
        [a],
        [a, b, b],
        [dataclasses.replace(a, architecture="BLACKWELL"), b],
        [dataclasses.replace(a, nonce=bytes(32)), b],
        [dataclasses.replace(a, report=a.report + b"\x00"), b],
        [dataclasses.replace(a, report=a.report[:-1], certificate_chain=a.report[-1:] + a.certificate_chain), b],
    ]
    assert len({collection_sha256(c) for c in changed} | {digest}) == len(changed) + 1
