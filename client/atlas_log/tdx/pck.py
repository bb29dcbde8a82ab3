"""The Intel SGX extension of a PCK certificate (OID 1.2.840.113741.1.13.1): FMSPC, PCE-ID and the TCB."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509

from atlas_log.errors import QuoteError
from atlas_log.tdx import der

SGX_EXTENSION_OID = "1.2.840.113741.1.13.1"
_TCB = SGX_EXTENSION_OID + ".2"


def _oid_value(oid: str) -> bytes:
    return der.encode_oid(oid)[2:]  # the content octets, compared as bytes (no decoding per certificate)


_FMSPC, _PCEID, _TCB_OID = (_oid_value(f"{SGX_EXTENSION_OID}.{n}") for n in (4, 3, 2))
_COMPONENTS = [_oid_value(f"{_TCB}.{i}") for i in range(1, 19)]


@dataclass(frozen=True, slots=True)
class PckExtension:
    fmspc: bytes  # 6 bytes
    pce_id: bytes  # 2 bytes
    sgx_tcb_components: tuple[int, ...]  # 16 SVNs
    pce_svn: int
    cpu_svn: bytes  # 16 bytes


def _fail(message: str) -> QuoteError:
    return QuoteError("pck-extension-invalid", message)


def parse_pck_extension(cert: x509.Certificate) -> PckExtension:
    """Extract the SGX extension's values; every one of them must be present and well formed."""
    try:
        ext = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier(SGX_EXTENSION_OID))
    except x509.ExtensionNotFound as exc:
        raise _fail("PCK certificate has no SGX extension") from exc
    value = ext.value
    if not isinstance(value, x509.UnrecognizedExtension):
        raise _fail("SGX extension has an unexpected type")
    try:
        (outer,) = der.read_all(value.value)
        if outer.tag != der.SEQUENCE:
            raise der.DerError("SGX extension is not a SEQUENCE")
        fields: dict[bytes, der.Tlv] = {}
        for item in der.read_all(outer.value):
            oid, val = der.read_all(item.value)
            if oid.tag != der.OID:
                raise der.DerError("SGX extension item does not start with an OID")
            fields[oid.value] = val
        comps: dict[bytes, der.Tlv] = {}
        for item in der.read_all(fields[_TCB_OID].value):
            oid, val = der.read_all(item.value)
            comps[oid.value] = val
        svns = tuple(der.decode_int(comps[o].value) for o in _COMPONENTS[:16])
        pce_svn = der.decode_int(comps[_COMPONENTS[16]].value)
        cpu_svn = comps[_COMPONENTS[17]].value
        fmspc = fields[_FMSPC].value
        pce_id = fields[_PCEID].value
    except (der.DerError, KeyError, ValueError) as exc:
        raise _fail(f"SGX extension is malformed or incomplete: {exc}") from exc
    if len(fmspc) != 6 or len(pce_id) != 2 or len(cpu_svn) != 16 or not all(0 <= s <= 255 for s in svns):
        raise _fail("SGX extension field sizes are wrong")
    return PckExtension(fmspc, pce_id, svns, pce_svn, cpu_svn)
