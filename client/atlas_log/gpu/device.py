"""The GPU's device certificate chain: its identity (ueid, hardware model, architecture) and the FWID its leaf
certificate carries, to compare with the report's opaque field 20.

The FWID extensions (NVIDIA's layout, README of the vectors):

* Hopper, ``2.23.133.5.4.1``: ``SEQUENCE { INTEGER 1, SubjectPublicKeyInfo, SEQUENCE { OID sha384,
  OCTET STRING fwid } }``;
* Blackwell, ``2.23.133.5.4.1.1`` (TCG DICE TcbInfo): ``SEQUENCE { … [6] IMPLICIT SEQUENCE OF SEQUENCE {
  OID hashAlg, OCTET STRING digest } … }``; the FWID is the first digest.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import NameOID

from atlas_log.errors import GpuEvidenceError
from atlas_log.gpu.opaque import Fwid
from atlas_log.tdx.der import INTEGER, OCTET_STRING, OID, SEQUENCE, DerError, Tlv, read_all

__all__ = ["DeviceIdentity", "device_identity", "leaf_fwid"]

_HOPPER_FWID = x509.ObjectIdentifier("2.23.133.5.4.1")
_DICE_TCB_INFO = x509.ObjectIdentifier("2.23.133.5.4.1.1")
_SHA384_OID = bytes.fromhex("608648016503040202")  # 2.16.840.1.101.3.4.2.2, DER content octets
_FWIDS_TAG = 0xA6  # [6] constructed, context-specific
_FWID_SIZE = 48
# The per-device CA's common name starts with the chip: GH100 is Hopper, GB100 is Blackwell.
_ARCHITECTURES = {"GH100": "HOPPER", "GB100": "BLACKWELL"}


@dataclass(frozen=True, slots=True)
class DeviceIdentity:
    """Who the chain says the GPU is: ``ueid`` (the leaf's serial number in decimal), ``hwmodel`` (the
    second certificate's common name), ``architecture`` (``HOPPER``/``BLACKWELL``, or None when the model is
    not one of these) and the leaf's ``fwid`` (None when it has no FWID extension)."""

    ueid: str
    hwmodel: str
    architecture: str | None
    fwid: Fwid | None


def _one(items: list[Tlv], tag: int, what: str) -> Tlv:
    if not items or items[0].tag != tag:
        raise DerError(f"{what}: expected tag 0x{tag:02x}")
    return items[0]


def _digest_pair(value: bytes) -> bytes:
    """``SEQUENCE { OID sha384, OCTET STRING (48) }`` → the digest."""
    parts = read_all(value)
    if len(parts) != 2 or parts[0].tag != OID or parts[0].value != _SHA384_OID or parts[1].tag != OCTET_STRING:
        raise DerError("FWID is not a SHA-384 digest")
    if len(parts[1].value) != _FWID_SIZE:
        raise DerError("FWID digest is not 48 bytes")
    return parts[1].value


def _hopper_fwid(value: bytes) -> bytes:
    outer = read_all(value)
    if len(outer) != 1:
        raise DerError("trailing bytes after the FWID extension")
    fields = read_all(_one(outer, SEQUENCE, "FWID extension").value)
    if len(fields) != 3 or fields[0].tag != INTEGER or fields[1].tag != SEQUENCE:
        raise DerError("FWID extension does not have 3 fields")
    return _digest_pair(_one(fields[2:], SEQUENCE, "FWID").value)


def _dice_fwid(value: bytes) -> bytes:
    outer = read_all(value)
    if len(outer) != 1:
        raise DerError("trailing bytes after the TcbInfo extension")
    fields = read_all(_one(outer, SEQUENCE, "TcbInfo").value)
    fwids = [f for f in fields if f.tag == _FWIDS_TAG]
    if len(fwids) != 1:
        raise DerError("TcbInfo has no fwids field")
    entries = read_all(fwids[0].value)
    return _digest_pair(_one(entries, SEQUENCE, "TcbInfo fwids").value)


def leaf_fwid(leaf: x509.Certificate) -> Fwid | None:
    """The FWID of the leaf certificate, or None without an FWID extension; :class:`GpuEvidenceError`
    ``parse_error`` when the extension is malformed."""
    for oid, parse in ((_HOPPER_FWID, _hopper_fwid), (_DICE_TCB_INFO, _dice_fwid)):
        try:
            ext = leaf.extensions.get_extension_for_oid(oid)
        except x509.ExtensionNotFound:
            continue
        if not isinstance(ext.value, x509.UnrecognizedExtension):
            raise GpuEvidenceError("parse_error", f"FWID extension {oid.dotted_string} is not raw DER")
        try:
            return Fwid(parse(ext.value.value))
        except DerError as exc:
            raise GpuEvidenceError("parse_error", f"FWID extension {oid.dotted_string}: {exc}") from exc
    return None


def _common_name(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


def device_identity(chain: list[x509.Certificate]) -> DeviceIdentity:
    """The identity the device chain (leaf first, at least leaf and device CA) states."""
    if len(chain) < 2:
        raise GpuEvidenceError("parse_error", "the device chain needs the leaf and the device CA certificate")
    hwmodel = _common_name(chain[1])
    return DeviceIdentity(
        str(chain[0].serial_number), hwmodel, _ARCHITECTURES.get(hwmodel.split(" ", 1)[0]), leaf_fwid(chain[0])
    )
