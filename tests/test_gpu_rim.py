"""Each RIM in the NVIDIA vectors gets its own verdict (rims/rims.json), and parsing RIMs is strict."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography import x509

from atlas_log.errors import GpuEvidenceError
from atlas_log.gpu.rim import parse_rim, rim_kind_of
from atlas_log.gpu.verification import verify_rim
from tests.vectors import vector_files, vectors_dir


def _catalogue() -> list[dict[str, Any]]:
    files = vector_files("nvidia", "rims", pattern="rims.json")
    return json.loads(files[0].read_text())["rims"] if files else []


@pytest.mark.parametrize("entry", _catalogue(), ids=lambda e: e["file"])
def test_rim_checks(entry: dict[str, Any]) -> None:
    rims = vectors_dir("nvidia", "rims")
    document = (rims / entry["file"]).read_bytes()
    rim = parse_rim(document)
    fields = entry["fields"]
    assert rim.version == fields["version"]
    assert rim_kind_of(rim.version) == entry["kind"]
    assert len(rim.certificates) == entry["chain_certs"]
    if "active_indices" in fields:
        assert sorted(rim.golden) == fields["active_indices"]
    for index, count in fields.get("alternatives", {}).items():
        assert len(rim.golden[int(index)].alternatives) == count
    for check in entry["checks"]:
        anchor = x509.load_pem_x509_certificate((rims / check["anchor"]).read_bytes()) if "anchor" in check else None
        assert verify_rim(document, at=check["at"], root=anchor) == tuple(check.get("failures", ())), check


@pytest.mark.parametrize(
    "document",
    [
        b"",
        b"<not-closed",
        b"<SoftwareIdentity/>",
        b'<!DOCTYPE x [<!ENTITY e "x">]><SoftwareIdentity xmlns="http://standards.iso.org/iso/19770/-2/2015/schema.xsd"/>',
    ],
)
def test_malformed_rims_are_parse_errors(document: bytes) -> None:
    with pytest.raises(GpuEvidenceError) as info:
        parse_rim(document, "driver_rim_parse_error")
    assert info.value.code == "driver_rim_parse_error"


def test_a_second_signature_reference_is_refused() -> None:
    rims = vectors_dir("nvidia", "rims")
    document = (rims / "NV_GPU_DRIVER_GH100_550.144.03.xml").read_bytes()
    wrapped = document.replace(b'URI=""', b'URI="#other"', 1)
    with pytest.raises(GpuEvidenceError, match="Reference"):
        parse_rim(wrapped)


def test_edited_golden_value_breaks_the_signature() -> None:
    rims = vectors_dir("nvidia", "rims")
    document = (rims / "NV_GPU_DRIVER_GH100_550.144.03.xml").read_bytes()
    golden = bytes.fromhex(parse_rim(document).golden[7].alternatives[0].hex())
    edited = document.replace(golden.hex().encode(), (bytes(47) + b"\x01").hex().encode())
    assert edited != document
    assert "rim_signature_invalid" in verify_rim(edited, at=1767225600)
