"""The OpaqueData of an NVIDIA MEASUREMENTS response: NVIDIA's type ‖ length ‖ value fields.

DSP0274 1.1 leaves OpaqueData to the vendor. NVIDIA's GPUs fill it with fields of a 2-byte type and a 2-byte
length (little-endian) followed by that many bytes; the driver and VBIOS versions, the FWID and the NVDEC
status that verification needs are among them. NVIDIA's own verifier rejects a type outside 1..36 and an
OPAQUE_DATA_VERSION above 1, and so does this parser (code ``parse_error``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NewType

from atlas_log.errors import GpuEvidenceError

__all__ = ["FIELD_NAMES", "Fwid", "OpaqueData", "parse_opaque_data"]

Fwid = NewType("Fwid", bytes)
"""A 48-byte firmware identity digest (opaque field 20, and the device leaf certificate's FWID)."""

# NVIDIA's names of the field types (NVIDIA/attestation-sdk). Types 26..31 are allowed but unnamed there.
FIELD_NAMES: dict[int, str] = {
    1: "CERT_ISSUER_NAME",
    2: "CERT_AUTHORITY_KEY_IDENTIFIER",
    3: "DRIVER_VERSION",
    4: "GPU_INFO",
    5: "SKU",
    6: "VBIOS_VERSION",
    7: "MANUFACTURER_ID",
    8: "TAMPER_DETECTION",
    9: "SMC",
    10: "VPR",
    11: "NVDEC0_STATUS",
    12: "MSRSCNT",
    13: "CPRINFO",
    14: "BOARD_ID",
    15: "CHIP_SKU",
    16: "CHIP_SKU_MOD",
    17: "PROJECT",
    18: "PROJECT_SKU",
    19: "PROJECT_SKU_MOD",
    20: "FWID",
    21: "PROTECTED_PCIE_STATUS",
    22: "SWITCH_PDI",
    23: "FLOORSWEPT_PORTS",
    24: "POSITION_ID",
    25: "LOCK_SWITCH_STATUS",
    32: "GPU_LINK_CONN",
    33: "SYS_ENABLE_STATUS",
    34: "OPAQUE_DATA_VERSION",
    35: "CHIP_INFO",
    36: "FEATURE_FLAG",
}
_MAX_TYPE = 36
_DRIVER_VERSION, _VBIOS_VERSION, _NVDEC0_STATUS, _MSRSCNT = 3, 6, 11, 12
_CHIP_SKU, _PROJECT, _PROJECT_SKU, _FWID = 15, 17, 18, 20
_OPAQUE_DATA_VERSION, _CHIP_INFO, _FEATURE_FLAG = 34, 35, 36
# Exact sizes of the fields whose meaning depends on their size.
_SIZES = {_VBIOS_VERSION: 8, _NVDEC0_STATUS: 1, _FWID: 48}
NVDEC0_DISABLED = 0x55
NVDEC0_ENABLED = 0xAA


def _text(value: bytes, what: str) -> str:
    """ASCII up to the first NUL (the fields are NUL-terminated or NUL-padded)."""
    try:
        return value.split(b"\0", 1)[0].decode("ascii")
    except UnicodeDecodeError as exc:
        raise GpuEvidenceError("parse_error", f"opaque field {what} is not ASCII") from exc


@dataclass(frozen=True, slots=True)
class OpaqueData:
    """The fields in report order, as ``(type, value)``; each type at most once."""

    fields: tuple[tuple[int, bytes], ...]
    _by_type: dict[int, bytes] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_type", dict(self.fields))  # each field is read several times per check

    def get(self, field_type: int) -> bytes | None:
        return self._by_type.get(field_type)

    @property
    def driver_version(self) -> str | None:
        """``DRIVER_VERSION`` up to its NUL, e.g. ``580.159.03``."""
        v = self.get(_DRIVER_VERSION)
        return None if v is None else _text(v, "DRIVER_VERSION")

    @property
    def vbios_version(self) -> str | None:
        """``VBIOS_VERSION`` as NVIDIA prints it: bytes 3, 2, 1, 0, 4 in upper-case hex joined by dots
        (``00 74 00 96 20 00 00 00`` → ``96.00.74.00.20``)."""
        v = self.get(_VBIOS_VERSION)
        return None if v is None else ".".join(f"{v[i]:02X}" for i in (3, 2, 1, 0, 4))

    @property
    def nvdec0_status(self) -> int | None:
        v = self.get(_NVDEC0_STATUS)
        return None if v is None else v[0]

    @property
    def fwid(self) -> Fwid | None:
        v = self.get(_FWID)
        return None if v is None else Fwid(v)

    @property
    def project(self) -> str | None:
        v = self.get(_PROJECT)
        return None if v is None else _text(v, "PROJECT")

    @property
    def project_sku(self) -> str | None:
        v = self.get(_PROJECT_SKU)
        return None if v is None else _text(v, "PROJECT_SKU")

    @property
    def chip_sku(self) -> str | None:
        v = self.get(_CHIP_SKU)
        return None if v is None else _text(v, "CHIP_SKU")

    @property
    def chip_info(self) -> str | None:
        v = self.get(_CHIP_INFO)
        return None if v is None else _text(v, "CHIP_INFO")

    @property
    def opaque_data_version(self) -> int | None:
        v = self.get(_OPAQUE_DATA_VERSION)
        return None if v is None else int.from_bytes(v, "little")

    @property
    def feature_flag(self) -> int | None:
        """0 = multi-GPU passthrough, 1 = single-GPU passthrough, 2 = protected PCIe."""
        v = self.get(_FEATURE_FLAG)
        return None if v is None else int.from_bytes(v, "little")

    @property
    def msrscnt(self) -> tuple[int, ...] | None:
        v = self.get(_MSRSCNT)
        return None if v is None else tuple(int.from_bytes(v[i : i + 4], "little") for i in range(0, len(v), 4))


def parse_opaque_data(data: bytes) -> OpaqueData:
    """Split OpaqueData into its fields; every field must end inside ``data`` and ``data`` must end with a
    field. Raises :class:`GpuEvidenceError` ``parse_error``."""
    fields: list[tuple[int, bytes]] = []
    seen: set[int] = set()
    pos = 0
    while pos < len(data):
        if pos + 4 > len(data):
            raise GpuEvidenceError("parse_error", f"opaque data ends inside a field header at offset {pos}")
        field_type = int.from_bytes(data[pos : pos + 2], "little")
        size = int.from_bytes(data[pos + 2 : pos + 4], "little")
        pos += 4
        if pos + size > len(data):
            raise GpuEvidenceError("parse_error", f"opaque field {field_type} runs past the opaque data")
        value = data[pos : pos + size]
        pos += size
        if not 1 <= field_type <= _MAX_TYPE:
            raise GpuEvidenceError("parse_error", f"opaque field type {field_type} is not in 1..{_MAX_TYPE}")
        if field_type in seen:  # a second DRIVER_VERSION would make the report ambiguous
            raise GpuEvidenceError("parse_error", f"opaque field type {field_type} appears twice")
        wanted = _SIZES.get(field_type)
        if wanted is not None and size != wanted:
            raise GpuEvidenceError(
                "parse_error", f"opaque field {FIELD_NAMES[field_type]} is {size} bytes, not {wanted}"
            )
        if field_type == _MSRSCNT and size % 4:
            raise GpuEvidenceError("parse_error", "opaque field MSRSCNT is not a list of 32-bit counters")
        fields.append((field_type, value))
        seen.add(field_type)
    out = OpaqueData(tuple(fields))
    version = out.opaque_data_version
    if version is not None and version > 1:
        raise GpuEvidenceError("parse_error", f"OPAQUE_DATA_VERSION {version} is newer than 1")
    status = out.nvdec0_status
    if status is not None and status not in (NVDEC0_DISABLED, NVDEC0_ENABLED):
        raise GpuEvidenceError("parse_error", f"NVDEC0_STATUS 0x{status:02x} is neither 0x55 nor 0xAA")
    return out
