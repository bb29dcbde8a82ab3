"""The NVIDIA GPU attestation report: an SPDM 1.1 GET_MEASUREMENTS request followed by its signed MEASUREMENTS
response (DMTF DSP0274 1.1.x, §10.11 "GET_MEASUREMENTS request and MEASUREMENTS response messages").

Parsing is strict: every length field is checked against the bytes that follow it, nothing may follow the
signature, and the fields NVIDIA fixes (SPDM 1.1, a signature requested over all measurement blocks, DMTF
measurement blocks holding SHA-384 digests, a P-384 signature) must have those values. A report that breaks
any rule raises :class:`~atlas_log.errors.GpuEvidenceError` with code ``parse_error``.

All integers are little-endian (DSP0274 §7, "Byte ordering").
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass
from typing import NewType

from atlas_log.errors import GpuEvidenceError
from atlas_log.gpu.opaque import OpaqueData, parse_opaque_data

__all__ = [
    "NONCE_SIZE",
    "SIGNATURE_SIZE",
    "AttestationReport",
    "Measurement",
    "MeasurementBlock",
    "MeasurementRequest",
    "MeasurementResponse",
    "Nonce",
    "ReportBytes",
    "parse_report",
]

ReportBytes = NewType("ReportBytes", bytes)
"""A raw attestation report: request ‖ response, as the GPU driver returns it (decoded from hex)."""
Nonce = NewType("Nonce", bytes)
"""A 32-byte SPDM nonce."""
Measurement = NewType("Measurement", bytes)
"""One measurement value: a 48-byte SHA-384 digest (or 48 zero bytes for an unused index)."""

SPDM_VERSION_11 = 0x11
GET_MEASUREMENTS = 0xE0
MEASUREMENTS = 0x60
NONCE_SIZE = 32
# ECDSA P-384 (the only BaseAsymAlgo NVIDIA GPUs negotiate): r ‖ s, 48 bytes each, big-endian (DSP0274 §14).
SIGNATURE_SIZE = 96
# SHA-384 (the only BaseHashAlgo NVIDIA GPUs negotiate) gives every digest measurement this size.
DIGEST_SIZE = 48
REQUEST_SIZE = 37  # header 4 + nonce 32 + SlotIDParam 1, when a signature is requested (§10.11.1)
_RESPONSE_FIXED = 8  # header 4 + NumberOfBlocks 1 + MeasurementRecordLength 3
_BLOCK_HEADER = 4  # Index 1 + MeasurementSpecification 1 + MeasurementSize 2 (§10.11.1.1)
_DMTF_HEADER = 3  # DMTFSpecMeasurementValueType 1 + DMTFSpecMeasurementValueSize 2 (§10.11.1.2)
_DMTF_SPEC = 0x01  # MeasurementSpecification bit 0: the DMTF measurement specification
_ALL_BLOCKS = 0xFF  # Param2: request every measurement block
_SIGNATURE_REQUESTED = 0x01  # Param1 bit 0
_MAX_OPAQUE = 1024  # §10.11.2: OpaqueLength shall be no more than 1024


@dataclass(frozen=True, slots=True)
class MeasurementRequest:
    """The GET_MEASUREMENTS request (37 bytes)."""

    version: int
    param1: int
    param2: int
    nonce: Nonce
    slot_id: int


@dataclass(frozen=True, slots=True)
class MeasurementBlock:
    """One DMTF measurement block. ``value_type`` bits 6:0 name what was measured (1 = mutable firmware);
    bit 7 is clear (a digest)."""

    index: int
    value_type: int
    value: Measurement


@dataclass(frozen=True, slots=True)
class MeasurementResponse:
    """The MEASUREMENTS response, signature included."""

    version: int
    param1: int
    param2: int
    measurement_record_length: int
    blocks: tuple[MeasurementBlock, ...]
    nonce: Nonce
    opaque_data: OpaqueData
    signature: bytes

    @property
    def measurements(self) -> dict[int, Measurement]:
        """Measurement values by SPDM index."""
        return {b.index: b.value for b in self.blocks}


@dataclass(frozen=True, slots=True)
class AttestationReport:
    """A parsed report. ``signed`` is exactly what the signature covers: request ‖ response up to (excluding)
    the signature — SPDM 1.1's L1 transcript for one exchange, with no signing-context prefix (§14)."""

    request: MeasurementRequest
    response: MeasurementResponse
    signed: bytes

    @property
    def nonce(self) -> Nonce:
        """The relying party's nonce, as the request carried it (what the nonce check compares)."""
        return self.request.nonce


class _Reader:
    """Consumes a byte string front to back; running past its end is a parse error naming the field."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, size: int, what: str) -> bytes:
        if self.pos + size > len(self.data):
            raise GpuEvidenceError(
                "parse_error",
                f"report truncated in {what}: needs {size} bytes at offset {self.pos}, has {len(self.data) - self.pos}",
            )
        out = self.data[self.pos : self.pos + size]
        self.pos += size
        return out

    def uint(self, size: int, what: str) -> int:
        return int.from_bytes(self.take(size, what), "little")


def _expect(value: int, wanted: int, what: str) -> None:
    if value != wanted:
        raise GpuEvidenceError("parse_error", f"{what} is 0x{value:02x}, expected 0x{wanted:02x}")


def _request(r: _Reader) -> MeasurementRequest:
    version = r.uint(1, "request SPDMVersion")
    _expect(version, SPDM_VERSION_11, "request SPDMVersion")
    _expect(r.uint(1, "request code"), GET_MEASUREMENTS, "request RequestResponseCode")
    param1 = r.uint(1, "request Param1")
    # Without bit 0 the request has no nonce and the response no signature: nothing would be attested.
    _expect(param1, _SIGNATURE_REQUESTED, "request Param1 (signature requested, no reserved bits)")
    param2 = r.uint(1, "request Param2")
    _expect(param2, _ALL_BLOCKS, "request Param2 (all measurement blocks)")
    nonce = Nonce(r.take(NONCE_SIZE, "request Nonce"))
    slot = r.uint(1, "request SlotIDParam")
    if slot > 7:  # bits 3:0 are the slot (0..7); bits 7:4 are reserved
        raise GpuEvidenceError("parse_error", f"request SlotIDParam 0x{slot:02x} is not a slot number 0..7")
    return MeasurementRequest(version, param1, param2, nonce, slot)


_BLOCK_HEAD = struct.Struct("<BBHBH")  # Index, MeasurementSpecification, MeasurementSize, then the DMTF header


_BLOCK = struct.Struct(f"<BBHBH{DIGEST_SIZE}s")  # a whole block: the only shape a valid one can have
_BLOCK_SIZE = _BLOCK.size  # 55
# (MeasurementSpecification, MeasurementSize, raw-bit-stream flag, value size) of every valid block
_VALID_SHAPE = {(_DMTF_SPEC, _DMTF_HEADER + DIGEST_SIZE, 0, DIGEST_SIZE)}


def _blocks(record: bytes, count: int) -> tuple[MeasurementBlock, ...]:
    """``count`` measurement blocks filling ``record`` exactly. Every valid block is one 55-byte shape, so a
    record of exactly that many is unpacked in one pass and checked as a whole; anything else (or a check that
    fails) goes through :func:`_checked_blocks`, which names the first violation."""
    if len(record) == count * _BLOCK_SIZE:
        rows = list(_BLOCK.iter_unpack(record))
        indices = {r[0] for r in rows}
        shapes = {(r[1], r[2], r[3] & 0x80, r[4]) for r in rows}
        if len(indices) == count and 0 not in indices and 0xFF not in indices and shapes == _VALID_SHAPE:
            return tuple([MeasurementBlock(r[0], r[3], Measurement(r[5])) for r in rows])
    return _checked_blocks(record, count)


def _checked_blocks(record: bytes, count: int) -> tuple[MeasurementBlock, ...]:
    """:func:`_blocks` one block at a time, raising at the first one that breaks a rule."""
    blocks: list[MeasurementBlock] = []
    seen: set[int] = set()
    at, unpack = 0, _BLOCK_HEAD.unpack_from
    for _ in range(count):
        if at + _BLOCK_HEAD.size > len(record):
            raise GpuEvidenceError("parse_error", f"report truncated in a measurement block header at offset {at}")
        index, spec, size, value_type, value_size = unpack(record, at)
        if index == 0 or index == 0xFF or index in seen:  # 0 and 0xFF are reserved request values, never blocks
            raise GpuEvidenceError("parse_error", f"measurement block index {index} is reserved or repeated")
        seen.add(index)
        _expect(spec, _DMTF_SPEC, f"block {index} MeasurementSpecification")
        if value_type & 0x80:  # bit 7 set: a raw bit stream, which cannot be compared with golden digests
            raise GpuEvidenceError("parse_error", f"block {index} holds a raw bit stream, not a digest")
        if size != _DMTF_HEADER + value_size or value_size != DIGEST_SIZE:
            raise GpuEvidenceError(
                "parse_error",
                f"block {index}: MeasurementSize {size} and value size {value_size} disagree "
                f"with a {DIGEST_SIZE}-byte SHA-384 digest",
            )
        start = at + _BLOCK_HEAD.size
        at = start + DIGEST_SIZE
        if at > len(record):
            raise GpuEvidenceError("parse_error", f"report truncated in block {index} Measurement")
        blocks.append(MeasurementBlock(index, value_type, Measurement(record[start:at])))
    if at != len(record):
        raise GpuEvidenceError(
            "parse_error", f"MeasurementRecordLength {len(record)} but {count} blocks use {at} bytes"
        )
    return tuple(blocks)


def _response(r: _Reader) -> tuple[MeasurementResponse, int]:
    version = r.uint(1, "response SPDMVersion")
    _expect(version, SPDM_VERSION_11, "response SPDMVersion")
    _expect(r.uint(1, "response code"), MEASUREMENTS, "response RequestResponseCode")
    # Param1 is reserved when all blocks were requested; Param2 bits 3:0 echo the slot (checked by the caller).
    param1 = r.uint(1, "response Param1")
    _expect(param1, 0, "response Param1")
    param2 = r.uint(1, "response Param2")
    count = r.uint(1, "NumberOfBlocks")
    if count == 0:
        raise GpuEvidenceError("parse_error", "NumberOfBlocks is 0: the response measures nothing")
    record_length = r.uint(3, "MeasurementRecordLength")
    blocks = _blocks(r.take(record_length, "MeasurementRecord"), count)
    nonce = Nonce(r.take(NONCE_SIZE, "response Nonce"))
    opaque_length = r.uint(2, "OpaqueLength")
    if not 0 < opaque_length <= _MAX_OPAQUE:  # NVIDIA's versions and FWID live here: it must be present
        raise GpuEvidenceError("parse_error", f"OpaqueLength {opaque_length} is not in 1..{_MAX_OPAQUE}")
    opaque = parse_opaque_data(r.take(opaque_length, "OpaqueData"))
    signed_end = r.pos
    signature = r.take(SIGNATURE_SIZE, "Signature")
    response = MeasurementResponse(version, param1, param2, record_length, blocks, nonce, opaque, signature)
    return response, signed_end


def parse_report(data: bytes) -> AttestationReport:
    """Parse request ‖ response strictly (DSP0274 1.1 §10.11); :class:`GpuEvidenceError` ``parse_error`` on
    any violation, including bytes after the signature. The last few parses are memoised by the bytes (an
    appraisal reads a report's RIM ids before it verifies it)."""
    return _parse_report(bytes(data))


@functools.lru_cache(maxsize=64)
def _parse_report(data: bytes) -> AttestationReport:
    r = _Reader(data)
    request = _request(r)
    response, signed_end = _response(r)
    if r.pos != len(data):
        raise GpuEvidenceError("parse_error", f"{len(data) - r.pos} bytes follow the signature")
    if response.param2 & 0x0F != request.slot_id or response.param2 & 0xF0:
        raise GpuEvidenceError("parse_error", "response Param2 does not echo the requested slot")
    return AttestationReport(request, response, data[:signed_end])
