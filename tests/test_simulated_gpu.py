"""The simulated NVIDIA GPU (development and tests only): its evidence and RIMs pass the real verifier under
its own test roots, each kind of bad evidence it can make is rejected with its code, and it never passes
under NVIDIA's pinned roots."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Literal

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from atlas_log.certificates import load_pem_certificates
from atlas_log.gpu.device import device_identity
from atlas_log.gpu.evidence import load_gpu_evidence, verify_gpu_evidence_path
from atlas_log.gpu.report import parse_report
from atlas_log.gpu.rim import parse_rim
from atlas_log.gpu.roots import CORIM_ROOT_SHA256, DEVICE_IDENTITY_ROOT_SHA256, certificate_sha256
from atlas_log.gpu.verdict import GpuVerdict
from atlas_log.gpu.verification import expected_rim_ids, verify_gpu_evidence, verify_rim
from atlas_log.testing import SimulatedGpu, serialize_gpu_evidence
from atlas_log.testing.simulated_gpu import DRIVER_RIM_INDICES, VBIOS_RIM_INDICES
from atlas_log_server.attest.dev import load_or_create_gpu, load_or_create_platform

NOW = 1_800_000_000
AT = NOW + 3600
DAY = 86_400
NONCE = bytes(range(32))


@pytest.fixture(scope="module")
def gpu() -> SimulatedGpu:
    return SimulatedGpu.create(NOW)


@pytest.fixture(scope="module")
def rims(gpu: SimulatedGpu) -> tuple[bytes, bytes]:
    return gpu.driver_rim(), gpu.vbios_rim()


def _verify(
    gpu: SimulatedGpu,
    report: bytes,
    *,
    rims: tuple[bytes | None, bytes | None] = (None, None),
    nonce: bytes = NONCE,
    at: int = AT,
    roots: SimulatedGpu | None = None,
) -> GpuVerdict:
    trusted = roots or gpu
    return verify_gpu_evidence(
        report,
        gpu.certificate_chain,
        nonce=nonce,
        at=at,
        driver_rim=rims[0],
        vbios_rim=rims[1],
        device_root=trusted.device_root,
        rim_root=trusted.rim_root,
    )


@pytest.mark.parametrize("architecture", ["HOPPER", "BLACKWELL"])
def test_simulated_evidence_and_rims_are_accepted(architecture: Literal["HOPPER", "BLACKWELL"]) -> None:
    gpu = SimulatedGpu.create(NOW, architecture=architecture)
    verdict = _verify(gpu, gpu.report(NONCE), rims=(gpu.driver_rim(), gpu.vbios_rim()))
    assert verdict.accept, verdict.failures
    assert verdict.measurements_checked
    assert verdict.architecture == architecture
    assert (verdict.driver_version, verdict.vbios_version) == (gpu.driver_version, gpu.vbios_version)
    assert verdict.ueid == gpu.ueid
    assert verdict.fwid == gpu.fwid.hex()
    assert verdict.hwmodel == f"{'GB100' if architecture == 'BLACKWELL' else 'GH100'} A01 GSP BROM"
    assert (verdict.driver_rim_id, verdict.vbios_rim_id) == gpu.rim_ids
    assert [(r.kind, r.version, r.failures) for r in verdict.rims] == [
        ("driver", gpu.driver_version, ()),
        ("vbios", gpu.vbios_version, ()),
    ]


def test_the_report_has_nvidias_layout(gpu: SimulatedGpu) -> None:
    report = gpu.report(NONCE)
    parsed = parse_report(report)
    opaque = parsed.response.opaque_data
    assert report[:4] == bytes([0x11, 0xE0, 0x01, 0xFF]) and report[4:36] == NONCE
    assert len(parsed.response.blocks) == 64 and parsed.response.measurement_record_length == 64 * 55
    # README of the vectors: with 64 blocks of 55 bytes a report is 3695 + OpaqueLength bytes.
    assert len(report) == 3695 + sum(4 + len(value) for _, value in opaque.fields) == len(parsed.signed) + 96
    assert parsed.response.measurements == dict(gpu.measurements)
    assert opaque.driver_version == gpu.driver_version and opaque.vbios_version == gpu.vbios_version
    assert (opaque.project, opaque.project_sku, opaque.chip_sku) == (gpu.project, gpu.project_sku, gpu.chip_sku)
    assert opaque.fwid == gpu.fwid and opaque.nvdec0_status == 0x55
    assert expected_rim_ids(parsed, "HOPPER") == gpu.rim_ids
    assert gpu.rim_ids == ("NV_GPU_DRIVER_GH100_580.0.0", "NV_GPU_VBIOS_SIM0_0001_001_9600AA0001")
    assert report != gpu.report(NONCE)  # the responder nonce and ECDSA are fresh per report


def test_the_chain_has_nvidias_shape(gpu: SimulatedGpu) -> None:
    chain = load_pem_certificates(gpu.certificate_chain)
    assert len(chain) == 5 and chain[-1] == gpu.device_root
    for cert in chain:
        key = cert.public_key()
        assert isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP384R1)
        assert cert.signature_hash_algorithm is not None and cert.signature_hash_algorithm.name == "sha384"
    usage = chain[0].extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature
    for issuer in chain[1:]:
        assert issuer.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    identity = device_identity(chain)
    assert (identity.architecture, identity.fwid, identity.ueid) == ("HOPPER", gpu.fwid, gpu.ueid)
    # Like NVIDIA's, device certificates never expire.
    assert {c.not_valid_after_utc.year for c in chain} == {9999}
    assert len(gpu.rim_chain) == 4 and parse_rim(gpu.driver_rim()).certificates == gpu.rim_chain


def test_never_accepted_under_nvidias_roots(gpu: SimulatedGpu, rims: tuple[bytes, bytes]) -> None:
    verdict = verify_gpu_evidence(
        gpu.report(NONCE), gpu.certificate_chain, nonce=NONCE, at=AT, driver_rim=rims[0], vbios_rim=rims[1]
    )
    assert not verdict.accept
    assert verdict.code == "chain_invalid"
    assert verdict.failures == ("chain_invalid", "driver_rim_chain_invalid", "vbios_rim_chain_invalid")
    assert certificate_sha256(gpu.device_root) != DEVICE_IDENTITY_ROOT_SHA256
    assert certificate_sha256(gpu.rim_root) != CORIM_ROOT_SHA256


def test_another_simulated_gpus_roots_do_not_vouch_for_it(gpu: SimulatedGpu, rims: tuple[bytes, bytes]) -> None:
    other = SimulatedGpu.create(NOW)
    verdict = _verify(gpu, gpu.report(NONCE), rims=rims, roots=other)
    assert verdict.failures == ("chain_invalid", "driver_rim_chain_invalid", "vbios_rim_chain_invalid")


@pytest.mark.parametrize(
    ("kind", "rim_index"),
    [("driver", DRIVER_RIM_INDICES[0]), ("driver", 30), ("vbios", VBIOS_RIM_INDICES[-1])],
)
def test_a_wrong_measurement_is_named_by_its_index(
    gpu: SimulatedGpu, rims: tuple[bytes, bytes], kind: str, rim_index: int
) -> None:
    report = gpu.report(NONCE, measurements={rim_index + 1: b"\x5a" * 48})
    verdict = _verify(gpu, report, rims=rims)
    assert verdict.code == "measurement_mismatch" and verdict.failures == ("measurement_mismatch",)
    assert verdict.mismatched_indices == {kind: (rim_index,)}


def test_an_alternative_golden_value_is_accepted(gpu: SimulatedGpu, rims: tuple[bytes, bytes]) -> None:
    golden = gpu.golden_measurements("driver")
    index, values = next((i, v) for i, v in golden.items() if len(v) == 2)
    verdict = _verify(gpu, gpu.report(NONCE, measurements={index + 1: values[1]}), rims=rims)
    assert verdict.accept, verdict.failures


def test_nvdec0_is_compared_only_when_enabled(gpu: SimulatedGpu) -> None:
    nvdec0 = {36: b"\x01" * 48}  # SPDM 36 = RIM index 35, NVDEC 0
    assert _verify(gpu, gpu.report(NONCE, measurements=nvdec0), rims=(gpu.driver_rim(), None)).accept
    enabled = gpu.variant(nvdec0_status=0xAA)
    verdict = _verify(enabled, enabled.report(NONCE, measurements=nvdec0), rims=(enabled.driver_rim(), None))
    assert verdict.mismatched_indices == {"driver": (35,)}


def test_nonce_mismatch(gpu: SimulatedGpu) -> None:
    verdict = _verify(gpu, gpu.report(NONCE), nonce=bytes(32))
    assert verdict.failures == ("nonce_mismatch",)


@pytest.mark.parametrize("offset", [4, 45 + 7, -1], ids=["nonce", "measurement", "signature"])
def test_a_flipped_byte_breaks_the_signature(gpu: SimulatedGpu, offset: int) -> None:
    report = bytearray(gpu.report(NONCE))
    report[offset] ^= 0x01
    verdict = _verify(gpu, bytes(report), nonce=bytes(report[4:36]))
    assert verdict.code == "signature_invalid" and verdict.failures == ("signature_invalid",)


def test_fwid_mismatch(gpu: SimulatedGpu) -> None:
    verdict = _verify(gpu, gpu.report(NONCE, fwid=b"\x11" * 48))
    assert verdict.failures == ("fwid_mismatch",)


def test_an_expired_or_future_device_certificate(gpu: SimulatedGpu) -> None:
    expired = gpu.with_validity("leaf", not_before=NOW - DAY, not_after=NOW + DAY)
    assert expired.ueid == gpu.ueid
    assert _verify(expired, expired.report(NONCE), at=NOW + 2 * DAY).failures == ("certificate_expired",)
    assert _verify(expired, expired.report(NONCE), at=NOW + DAY).accept  # notAfter itself is inclusive
    future = gpu.with_validity("leaf", not_before=NOW + DAY, not_after=NOW + 2 * DAY)
    assert _verify(future, future.report(NONCE)).failures == ("certificate_not_yet_valid",)


def test_a_rim_for_another_version(gpu: SimulatedGpu, rims: tuple[bytes, bytes]) -> None:
    verdict = _verify(gpu, gpu.report(NONCE), rims=(gpu.driver_rim(version="581.0.0"), rims[1]))
    assert verdict.code == "driver_rim_version_mismatch"
    assert verdict.failures == ("driver_rim_version_mismatch",)
    verdict = _verify(gpu, gpu.report(NONCE), rims=(rims[0], gpu.vbios_rim(version="96.00.AA.00.02")))
    assert verdict.failures == ("vbios_rim_version_mismatch",)


def test_a_tampered_rim_fails_its_signature(gpu: SimulatedGpu, rims: tuple[bytes, bytes]) -> None:
    # An inactive entry: the golden values the comparison uses stay the same, only the signature breaks.
    tampered = rims[0].replace(
        b'index="1" active="False" alternatives="1" ns2:Hash0="00',
        b'index="1" active="False" alternatives="1" ns2:Hash0="01',
        1,
    )
    assert tampered != rims[0]
    verdict = _verify(gpu, gpu.report(NONCE), rims=(tampered, rims[1]))
    assert verdict.failures == ("driver_rim_signature_invalid",)
    assert verify_rim(tampered, at=AT, root=gpu.rim_root) == ("rim_signature_invalid",)


def test_rim_golden_values_can_disagree_with_the_gpu(gpu: SimulatedGpu) -> None:
    driver = gpu.driver_rim(golden={21: [b"\x77" * 48]})
    verdict = _verify(gpu, gpu.report(NONCE), rims=(driver, None))
    assert verdict.mismatched_indices == {"driver": (21,)}


def test_an_expired_rim_signer(gpu: SimulatedGpu) -> None:
    expired = gpu.with_validity("rim_signer", not_before=NOW - DAY, not_after=NOW + DAY)
    rims = (expired.driver_rim(), expired.vbios_rim())
    verdict = _verify(expired, expired.report(NONCE), rims=rims, at=NOW + 2 * DAY)
    assert verdict.failures == ("driver_rim_certificate_expired", "vbios_rim_certificate_expired")
    assert verify_rim(expired.driver_rim(), at=NOW, root=expired.rim_root) == ()


def test_siblings_share_roots_and_rims(gpu: SimulatedGpu, rims: tuple[bytes, bytes]) -> None:
    sibling = gpu.sibling(NOW)
    assert sibling.ueid != gpu.ueid and sibling.fwid != gpu.fwid
    assert sibling.device_root == gpu.device_root and sibling.rim_ids == gpu.rim_ids
    assert _verify(sibling, sibling.report(NONCE), rims=rims, roots=gpu).accept


def test_save_and_load(gpu: SimulatedGpu, rims: tuple[bytes, bytes], tmp_path: Path) -> None:
    gpu.save(tmp_path)
    assert stat.S_IMODE(os.stat(tmp_path / "gpu.json").st_mode) == 0o600  # it holds private keys
    again = SimulatedGpu.load(tmp_path)
    assert again.certificate_chain == gpu.certificate_chain and again.rim_chain == gpu.rim_chain
    assert again.measurements == gpu.measurements and again.rim_ids == gpu.rim_ids
    # The loaded GPU signs as the saved one: its evidence verifies under the saved GPU's roots and RIMs.
    assert _verify(again, again.report(NONCE), rims=rims, roots=gpu).accept
    assert _verify(gpu, gpu.report(NONCE), rims=(again.driver_rim(), again.vbios_rim()), roots=again).accept


def test_load_or_create_keeps_one_gpu_beside_the_platform(tmp_path: Path) -> None:
    # The dev server keeps both simulators in one folder: each has its own file and creation lock.
    platform = load_or_create_platform(tmp_path)
    first = load_or_create_gpu(tmp_path)
    again = load_or_create_gpu(tmp_path)
    assert again.certificate_chain == first.certificate_chain
    assert load_or_create_platform(tmp_path).root_fingerprint == platform.root_fingerprint


def test_serialized_evidence_round_trip(gpu: SimulatedGpu, rims: tuple[bytes, bytes], tmp_path: Path) -> None:
    gpus = [gpu, gpu.sibling(NOW), SimulatedGpu.create(NOW, architecture="BLACKWELL")]
    path = tmp_path / "evidence.json"
    path.write_bytes(serialize_gpu_evidence(gpus, NONCE))
    assert [item["arch"] for item in json.loads(path.read_text())] == ["HOPPER", "HOPPER", "BLACKWELL"]
    loaded = load_gpu_evidence(path)
    assert [(e.architecture, e.nonce, e.certificate_chain) for e in loaded] == [
        (g.architecture, NONCE, g.certificate_chain) for g in gpus
    ]
    for item, source in zip(loaded, gpus, strict=True):
        verdict = verify_gpu_evidence(
            item.report,
            item.certificate_chain,
            nonce=NONCE,
            at=AT,
            evidence_nonce=item.nonce,
            architecture=item.architecture,
            device_root=source.device_root,
            rim_root=source.rim_root,
        )
        assert verdict.accept, verdict.failures
    # The file-level path knows only NVIDIA's roots: everything holds but the chain.
    verdicts = verify_gpu_evidence_path(path, at=AT, nonce=NONCE)
    assert [v.failures for v in verdicts] == [("chain_invalid",)] * 3
    assert [v.failures for v in verify_gpu_evidence_path(path, at=AT, nonce=bytes(32))] == [
        ("nonce_mismatch", "chain_invalid")
    ] * 3


def test_evidence_object(gpu: SimulatedGpu) -> None:
    evidence = gpu.evidence(NONCE)
    assert (evidence.nonce, evidence.architecture) == (NONCE, "HOPPER")
    assert _verify(gpu, evidence.report).accept


def test_bad_arguments_are_refused(gpu: SimulatedGpu) -> None:
    with pytest.raises(ValueError, match="nonce"):
        gpu.report(b"short")
    with pytest.raises(ValueError, match="VBIOS"):
        SimulatedGpu.create(NOW, vbios_version="96.00")
    with pytest.raises(ValueError, match="SPDM indices"):
        SimulatedGpu.create(NOW, measurements={65: bytes(48)})
