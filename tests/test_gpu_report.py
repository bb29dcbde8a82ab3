"""The SPDM 1.1 report parser against NVIDIA's own parse, and malformed reports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from atlas_log.errors import GpuEvidenceError
from atlas_log.gpu.opaque import FIELD_NAMES
from atlas_log.gpu.report import AttestationReport, _blocks, _checked_blocks, parse_report
from tests.vectors import vectors_dir

# NVIDIA's parser in expected/ predates these two field types and leaves them out of its output.
_UNNAMED_BY_NVIDIA_PARSE = {34, 36}


def _report(case: str) -> bytes:
    return bytes.fromhex((vectors_dir("nvidia", case) / "report.txt").read_text())


def _as_nvidia(report: AttestationReport) -> tuple[dict[str, Any], dict[str, Any]]:
    """Our parse in the shape of NVIDIA's ``spdm_parsed_output.json`` and ``spdm_req_parsed_output.json``."""
    q, r = report.request, report.response
    request = {
        "SPDMVersion": f"0x{q.version:02x}",
        "RequestResponseCode": "0xe0",
        "Param1": f"0x{q.param1:02x}",
        "Param2": f"0x{q.param2:02x}",
        "Nonce": "0x" + q.nonce.hex(),
        "SlotIDParam": f"0x{q.slot_id:02x}",
    }
    opaque: dict[str, Any] = {}
    for field_type, value in r.opaque_data.fields:
        if field_type in _UNNAMED_BY_NVIDIA_PARSE:
            continue
        name = f"OPAQUE_FIELD_ID_{FIELD_NAMES[field_type]}"
        opaque[name] = list(r.opaque_data.msrscnt or ()) if field_type == 12 else "0x" + value.hex()
    response = {
        "SPDMVersion": f"0x{r.version:02x}",
        "RequestResponseCode": "0x60",
        "Param1": f"0x{r.param1:02x}",
        "Param2": f"0x{r.param2:02x}",
        "NumberOfBlocks": len(r.blocks),
        "MeasurementRecordLength": r.measurement_record_length,
        "Nonce": "0x" + r.nonce.hex(),
        "OpaqueLength": sum(4 + len(v) for _, v in r.opaque_data.fields),
        "Signature": "0x" + r.signature.hex(),
        "MeasurementRecord": {
            "NumberOfBlocks": len(r.blocks),
            "MeasurementBlocks": {
                str(b.index): {
                    "DMTFSpecMeasurementValueType": b.value_type,
                    "DMTFSpecMeasurementValueSize": len(b.value),
                    "DMTFSpecMeasurementValue": "0x" + b.value.hex(),
                }
                for b in r.blocks
            },
        },
        "OpaqueData": {"OpaqueDataField": opaque},
    }
    return request, response


def test_parse_equals_nvidias_parse() -> None:
    expected = vectors_dir("nvidia", "expected")
    request, response = _as_nvidia(parse_report(_report("hopper-580-valid")))
    assert request == json.loads((expected / "spdm_req_parsed_output.json").read_text())
    assert response == json.loads((expected / "spdm_parsed_output.json").read_text())


def test_parse_gives_every_case_its_fields_and_sizes() -> None:
    base = vectors_dir("nvidia")
    for case_file in sorted(base.glob("*/case.json")):
        case = json.loads(case_file.read_text())
        data = bytes.fromhex((case_file.parent / "report.txt").read_text())
        report = parse_report(data)
        sizes, fields = case["sizes"], case["fields"]
        assert len(report.signed) == sizes["signed_bytes"], case["name"]
        assert report.response.measurement_record_length == sizes["measurement_record_length"]
        opaque = report.response.opaque_data
        assert opaque.driver_version == fields["driver_version"], case["name"]
        assert opaque.vbios_version == fields["vbios_version"], case["name"]
        if "fwid" in fields:
            assert (opaque.fwid.hex() if opaque.fwid else None) == fields["fwid"]
        if "measurements" in fields:
            assert {str(k): v.hex() for k, v in report.response.measurements.items()} == fields["measurements"]


def _mutated(data: bytes, offset: int, value: int) -> bytes:
    return data[:offset] + bytes([value]) + data[offset + 1 :]


@pytest.mark.parametrize(
    ("name", "mutate"),
    [
        ("truncated response", lambda d: d[:-1]),
        ("truncated inside the measurement record", lambda d: d[:1000]),
        ("trailing bytes", lambda d: d + b"\0"),
        ("empty", lambda d: b""),
        ("request only", lambda d: d[:37]),
        ("SPDM 1.2 request", lambda d: _mutated(d, 0, 0x12)),
        ("no signature requested", lambda d: _mutated(d, 2, 0x00)),
        ("not a MEASUREMENTS response", lambda d: _mutated(d, 38, 0x61)),
        ("no blocks", lambda d: _mutated(d, 41, 0)),
        ("record length off by one", lambda d: _mutated(d, 42, d[42] + 1)),
        ("record length one short: the last digest cut", lambda d: _mutated(d, 42, d[42] - 1)),
        ("block index 0", lambda d: _mutated(d, 45, 0)),
        ("repeated block index", lambda d: _mutated(d, 45 + 55, 1)),
        ("raw bit stream block", lambda d: _mutated(d, 49, 0x81)),
        # Each keeps the record 64 blocks of 55 bytes long, the shape of a valid one.
        ("block index 255", lambda d: _mutated(d, 45 + 55 * 63, 0xFF)),
        ("not the DMTF measurement specification", lambda d: _mutated(d, 45 + 55 * 5 + 1, 0x02)),
        ("MeasurementSize disagrees with the digest", lambda d: _mutated(d, 45 + 55 * 7 + 2, 50)),
        ("value size is not a SHA-384 digest", lambda d: _mutated(d, 45 + 55 * 9 + 5, 47)),
    ],
)
def test_malformed_reports_are_parse_errors(name: str, mutate: Any) -> None:
    with pytest.raises(GpuEvidenceError) as info:
        parse_report(mutate(_report("hopper-580-valid")))
    assert info.value.code == "parse_error", name


def test_blocks_unpacked_at_once_equal_blocks_read_one_by_one() -> None:
    record = _report("hopper-580-valid")[45 : 45 + 64 * 55]
    assert _blocks(record, 64) == _checked_blocks(record, 64)
    assert [b.index for b in _blocks(record, 64)] == list(range(1, 65))


def test_opaque_length_must_cover_whole_fields() -> None:
    data = _report("hopper-580-valid")
    at = 45 + 3520 + 32  # OpaqueLength
    length = int.from_bytes(data[at : at + 2], "little")
    shorter = data[:at] + (length - 1).to_bytes(2, "little") + data[at + 2 :]
    with pytest.raises(GpuEvidenceError, match="parse_error"):
        parse_report(shorter)


def test_vectors_folder_is_named_when_absent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATLAS_VECTORS", str(tmp_path))
    with pytest.raises(pytest.skip.Exception, match="nvidia"):
        vectors_dir("nvidia")
