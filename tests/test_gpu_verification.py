"""Every check of every NVIDIA case gets its expected verdict, and the attacks are rejected with their code."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtensionOID

from atlas_log.errors import GpuEvidenceError
from atlas_log.gpu.policy import Policy
from atlas_log.gpu.verdict import GpuVerdict, repeated_device
from atlas_log.gpu.verification import verify_gpu_evidence
from atlas_log.testing.simulated_gpu import SimulatedGpu
from tests.vectors import vector_files, vectors_dir

NOW = 1767225600  # 2026-01-01, inside every device chain's window


def _case(name: str) -> tuple[bytes, bytes, bytes, dict[str, Any]]:
    d = vectors_dir("nvidia", name)
    return (
        bytes.fromhex((d / "report.txt").read_text()),
        (d / "certchain.pem").read_bytes(),
        bytes.fromhex((d / "nonce.hex").read_text().strip()),
        json.loads((d / "case.json").read_text()),
    )


def _rim(path: str) -> bytes:
    return (vectors_dir("nvidia") / path).read_bytes()


def _check_ids() -> list[str]:
    return [
        f"{p.parent.name}@{c['at']}{'-nosig' if c.get('mode') else ''}"
        for p in vector_files("nvidia", pattern="case.json")
        for c in json.loads(p.read_text())["checks"]
    ]


def _same(verdict: GpuVerdict, check: dict[str, Any]) -> None:
    assert verdict.accept is (check["expect"] == "accept")
    assert verdict.code == check.get("reason")
    assert verdict.failures == tuple(check.get("failures", ()))
    if "mismatched_indices" in check:
        assert verdict.mismatched_indices == {k: tuple(v) for k, v in check["mismatched_indices"].items()}


@pytest.mark.parametrize("check_id", _check_ids())
def test_case_check(check_id: str) -> None:
    name, _, rest = check_id.partition("@")
    report, chain, nonce, case = _case(name)
    rims = case.get("rims") or {}
    for check in case["checks"]:
        if f"{check['at']}{'-nosig' if check.get('mode') else ''}" != rest:
            continue
        policy = Policy(check_rim_signatures=not check.get("mode", {}).get("skip_rim_signature", False))
        verdict = verify_gpu_evidence(
            report,
            chain,
            nonce=nonce,
            at=check["at"],
            policy=policy,
            driver_rim=_rim(rims["driver"]) if "driver" in rims else None,
            vbios_rim=_rim(rims["vbios"]) if "vbios" in rims else None,
        )
        _same(verdict, check)
        if verdict.accept:
            fields = case["fields"]
            assert verdict.driver_version == fields["driver_version"]
            assert verdict.vbios_version == fields["vbios_version"]
            assert verdict.architecture == case["arch"]
            for key in ("ueid", "hwmodel", "driver_rim_id", "vbios_rim_id", "fwid"):
                if key in fields:
                    assert getattr(verdict, key) == fields[key], key


def test_serialized_items() -> None:
    base = vectors_dir("nvidia", "serialized")
    for case_file in sorted(base.glob("*.case.json")):
        case = json.loads(case_file.read_text())
        items = json.loads((base / case_file.name.replace(".case.json", ".json")).read_text())
        for expected in case["items"]:
            item = items[expected["index"]]
            for check in expected["checks"]:
                verdict = verify_gpu_evidence(
                    base64.b64decode(item["evidence"]),
                    base64.b64decode(item["certificate"]),
                    nonce=bytes.fromhex(expected["nonce"]),
                    evidence_nonce=bytes.fromhex(item["nonce"]),
                    architecture=item["arch"],
                    at=check["at"],
                )
                _same(verdict, check)


# --- attacks ---------------------------------------------------------------------------------------


def test_flipped_signature_byte() -> None:
    report, chain, nonce, _ = _case("hopper-580-valid")
    flipped = report[:-1] + bytes([report[-1] ^ 0x01])
    assert verify_gpu_evidence(flipped, chain, nonce=nonce, at=NOW).code == "signature_invalid"


def test_flipped_signed_byte() -> None:
    report, chain, nonce, _ = _case("hopper-580-valid")
    tampered = report[:60] + bytes([report[60] ^ 0x01]) + report[61:]  # inside block 1's value
    assert verify_gpu_evidence(tampered, chain, nonce=nonce, at=NOW).code == "signature_invalid"


@pytest.mark.parametrize("cut", [lambda r: r[:-1], lambda r: r + b"\x00", lambda r: r[:-97]])
def test_truncated_or_trailing_is_a_parse_error(cut: Any) -> None:
    report, chain, nonce, _ = _case("hopper-580-valid")
    with pytest.raises(GpuEvidenceError) as info:
        verify_gpu_evidence(cut(report), chain, nonce=nonce, at=NOW)
    assert info.value.code == "parse_error"


def test_wrong_nonce() -> None:
    report, chain, nonce, _ = _case("hopper-580-valid")
    other = bytes([nonce[0] ^ 1]) + nonce[1:]
    verdict = verify_gpu_evidence(report, chain, nonce=other, at=NOW)
    assert (verdict.code, verdict.failures) == ("nonce_mismatch", ("nonce_mismatch",))


def test_serialized_nonce_differing_from_the_chosen_one() -> None:
    report, chain, nonce, _ = _case("hopper-580-valid")
    verdict = verify_gpu_evidence(report, chain, nonce=nonce, evidence_nonce=bytes(32), at=NOW)
    assert verdict.code == "nonce_mismatch"


def test_chain_from_another_root() -> None:
    report, chain, nonce, _ = _case("hopper-580-valid")
    corim_root = x509.load_pem_x509_certificate(
        (vectors_dir("nvidia", "roots") / "nvidia-corim-signing-root-ca.pem").read_bytes()
    )
    verdict = verify_gpu_evidence(report, chain, nonce=nonce, at=NOW, device_root=corim_root)
    assert verdict.code == "chain_invalid"


def test_chain_without_the_pinned_root() -> None:
    report, chain, nonce, _ = _case("hopper-580-valid")
    without_root = b"".join(p + b"-----END CERTIFICATE-----\n" for p in chain.split(b"-----END CERTIFICATE-----\n")[:4])
    verdict = verify_gpu_evidence(report, without_root, nonce=nonce, at=NOW)
    assert verdict.code == "chain_invalid"


def test_chain_out_of_order() -> None:
    report, chain, nonce, _ = _case("hopper-580-valid")
    pems = [p + b"-----END CERTIFICATE-----\n" for p in chain.split(b"-----END CERTIFICATE-----\n")[:5]]
    swapped = b"".join([pems[0], pems[2], pems[1], pems[3], pems[4]])
    assert verify_gpu_evidence(report, swapped, nonce=nonce, at=NOW).code == "chain_invalid"


def test_certificate_expired_at_the_given_time() -> None:
    report, chain, nonce, _ = _case("hopper-580-valid")
    verdict = verify_gpu_evidence(report, chain, nonce=nonce, at=253402300800)  # one second after notAfter
    assert verdict.failures == ("certificate_expired",)


def test_rim_whose_measurement_differs() -> None:
    report, chain, nonce, case = _case("hopper-545-rim-match")
    vbios = _rim(case["rims"]["vbios"])
    verdict = verify_gpu_evidence(
        report[: 45 + 7 * 55 - 1] + bytes([report[45 + 7 * 55 - 1] ^ 1]) + report[45 + 7 * 55 :],
        chain,
        nonce=nonce,
        at=1700000000,
        driver_rim=_rim(case["rims"]["driver"]),
        vbios_rim=vbios,
    )
    # The flipped byte is signed, so the signature fails too; the measurement check still names index 6.
    assert verdict.failures == ("signature_invalid", "measurement_mismatch")
    assert verdict.mismatched_indices == {"vbios": (6,)}


def test_rim_for_another_driver_version() -> None:
    report, chain, nonce, _ = _case("hopper-545-rim-match")
    verdict = verify_gpu_evidence(
        report, chain, nonce=nonce, at=NOW, driver_rim=_rim("rims/NV_GPU_DRIVER_GH100_550.144.03.xml")
    )
    assert verdict.code == "driver_rim_version_mismatch"
    assert verdict.failures == ("driver_rim_version_mismatch",)
    assert not verdict.measurements_checked


def test_required_rims_missing() -> None:
    report, chain, nonce, _ = _case("hopper-580-valid")
    verdict = verify_gpu_evidence(
        report, chain, nonce=nonce, at=NOW, policy=Policy(require_driver_rim=True, require_vbios_rim=True)
    )
    assert verdict.failures == ("driver_rim_missing", "vbios_rim_missing")


def test_malformed_rim_is_a_typed_error() -> None:
    report, chain, nonce, _ = _case("hopper-580-valid")
    with pytest.raises(GpuEvidenceError) as info:
        verify_gpu_evidence(report, chain, nonce=nonce, at=NOW, vbios_rim=b"<SoftwareIdentity/>")
    assert info.value.code == "vbios_rim_parse_error"


def test_verdict_json_names_what_was_checked() -> None:
    report, chain, nonce, case = _case("hopper-545-rim-match")
    verdict = verify_gpu_evidence(
        report,
        chain,
        nonce=nonce,
        at=1700000000,
        driver_rim=_rim(case["rims"]["driver"]),
        vbios_rim=_rim(case["rims"]["vbios"]),
    )
    out = verdict.to_json()
    assert out["accept"] is True and out["code"] is None
    assert out["measurements_checked"] is True
    assert [r["kind"] for r in out["rims"]] == ["driver", "vbios"]
    assert out["device_chain"][-1] == "O=NVIDIA,CN=NVIDIA Device Identity CA"
    json.dumps(out)


def test_wrong_size_nonce_is_refused(tmp_path: Path) -> None:
    report, chain, _, _ = _case("hopper-580-valid")
    with pytest.raises(ValueError, match="32 bytes"):
        verify_gpu_evidence(report, chain, nonce=b"short", at=NOW)


def test_memoised_work_never_decides_for_other_bytes_or_another_time() -> None:
    """Verification memoises chain paths and RIM parses/signatures by exact bytes: a tampered RIM or chain met
    after (or before) the genuine one is still refused, and time is judged on every call."""
    from cryptography.hazmat.primitives import serialization

    from atlas_log.gpu.verification import clear_caches
    from atlas_log.testing import SimulatedGpu

    gpu = SimulatedGpu.create(NOW, rim_years=1)
    nonce = bytes(range(32))
    report, driver = gpu.report(nonce), gpu.driver_rim()
    at = driver.index(b':Hash0="') + len(b':Hash0="')  # the first golden value: one hex digit changed
    tampered_rim = driver[:at] + (b"1" if driver[at : at + 1] == b"0" else b"0") + driver[at + 1 :]
    other = SimulatedGpu.create(NOW)
    # The same names and keys' places, but another GPU's leaf: a chain that does not chain.
    spliced = b"".join(
        c.public_bytes(serialization.Encoding.PEM) for c in (other.device_chain[0], *gpu.device_chain[1:])
    )

    def verify(chain: bytes, rim: bytes, at: int = NOW + 60) -> GpuVerdict:
        return verify_gpu_evidence(
            report, chain, nonce=nonce, at=at, driver_rim=rim, device_root=gpu.device_root, rim_root=gpu.rim_root
        )

    for first_genuine in (True, False):
        clear_caches()
        runs = [(gpu.certificate_chain, driver), (spliced, tampered_rim)]
        for chain, rim in runs if first_genuine else runs[::-1]:
            verdict = verify(chain, rim)
            if chain == gpu.certificate_chain:
                assert verdict.accept, verdict.failures
            else:
                assert "chain_invalid" in verdict.failures or "signature_invalid" in verdict.failures
                assert "driver_rim_signature_invalid" in verdict.failures
    assert verify(gpu.certificate_chain, driver, at=NOW + 2 * 365 * 86_400).code == "driver_rim_certificate_expired"


def _pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def _renamed_curve(cert: x509.Certificate) -> x509.Certificate:
    """``cert`` with its own key's curve (secp384r1, the first curve OID in its DER) renamed secp160k1: it loads,
    and only reading its key fails (the library does not support that curve)."""
    der = cert.public_bytes(serialization.Encoding.DER)
    return x509.load_der_x509_certificate(
        der.replace(bytes.fromhex("06052b81040022"), bytes.fromhex("06052b81040009"), 1)
    )


def crafted_chain(gpu: SimulatedGpu, case: str) -> bytes:
    """A device chain a submitter made up so that it parses, with one certificate the library fails on only
    when a verifier reads it: the leaf's keyUsage is not a BIT STRING, or the leaf's or the BROM CA's key is on
    a curve the library does not support."""
    chain = gpu.device_chain
    if case == "leaf-malformed-key-usage":
        key = ec.generate_private_key(ec.SECP384R1())
        leaf = (
            x509.CertificateBuilder()
            .subject_name(chain[0].subject)
            .issuer_name(chain[0].issuer)
            .public_key(key.public_key())
            .serial_number(chain[0].serial_number)
            .not_valid_before(chain[0].not_valid_before_utc)
            .not_valid_after(chain[0].not_valid_after_utc)
            .add_extension(x509.UnrecognizedExtension(ExtensionOID.KEY_USAGE, b"\x05\x00"), critical=False)
            .sign(key, hashes.SHA384())
        )
        return _pem(leaf, *chain[1:])
    if case == "leaf-unsupported-curve":
        return _pem(_renamed_curve(chain[0]), *chain[1:])
    return _pem(chain[0], _renamed_curve(chain[1]), *chain[2:])


CRAFTED = ["leaf-malformed-key-usage", "leaf-unsupported-curve", "ca-unsupported-curve"]


@pytest.mark.parametrize("case", CRAFTED)
def test_a_device_certificate_unusable_once_read_is_a_parse_error(case: str) -> None:
    gpu = SimulatedGpu.create(NOW)
    nonce = bytes(range(32))
    with pytest.raises(GpuEvidenceError) as info:
        verify_gpu_evidence(
            gpu.report(nonce), crafted_chain(gpu, case), nonce=nonce, at=NOW, device_root=gpu.device_root
        )
    assert info.value.code == "parse_error"


def test_one_device_listed_twice_is_found() -> None:
    gpu = SimulatedGpu.create(NOW)
    other = gpu.sibling(NOW)

    def verdict(g: SimulatedGpu, n: int) -> GpuVerdict:
        nonce = bytes([n]) * 32
        return verify_gpu_evidence(g.report(nonce), g.certificate_chain, nonce=nonce, at=NOW, device_root=g.device_root)

    one, two, again = verdict(gpu, 1), verdict(other, 2), verdict(gpu, 3)  # `again`: another report, same GPU
    assert one.accept and two.accept and again.accept
    assert repeated_device([one, two]) is None
    assert repeated_device([one, two, again]) == (0, 2)
    assert repeated_device([two, one, one]) == (1, 2)
