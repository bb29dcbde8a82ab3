"""Intel TDX DCAP quotes, versions 4 and 5 (body types 2 and 3): strict parsing into frozen structures.

Layout (all integers little-endian): a 48-byte header; in v5 a 6-byte body descriptor (type, size); the TD
report body (584 bytes for TDX 1.0, 648 for 1.5); a u32 length and the signature data: quote signature,
attestation key, and certification data type 6 holding the QE report, its signature, the QE auth data and
an inner type-5 PCK certificate chain (PEM). Every length field must agree with its container. Bytes after
the signature data are neither signed nor used, and are ignored as Intel's reference verifier ignores them
(zero padding from fixed-size buffers, in practice: reference/tdx.md "Buffer conventions"). :attr:`Quote.raw`
is the quote without them, its identity: a third party can vary them freely, so they never make one quote
look like another. A log admits only zero padding there (``zero_padding_only``).
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from atlas_log.errors import QuoteError

__all__ = ["INTEL_QE_VENDOR_ID", "TDX_TEE_TYPE", "QeReport", "Quote", "TdReport", "parse_quote"]

INTEL_QE_VENDOR_ID = bytes.fromhex("939a7233f79c4ca9940a0db3957f0607")
TDX_TEE_TYPE = 0x81
ATT_KEY_ECDSA_P256 = 2
HEADER_SIZE = 48
TD_REPORT10_SIZE = 584
TD_REPORT15_SIZE = 648
BODY_SIZES = {2: TD_REPORT10_SIZE, 3: TD_REPORT15_SIZE}
QE_REPORT_SIZE = 384
CERT_TYPE_QE_REPORT = 6
CERT_TYPE_PCK_CHAIN = 5
MAX_QUOTE_SIZE = 1 << 16


def _fail(message: str) -> QuoteError:
    return QuoteError("quote-malformed", message)


@dataclass(frozen=True, slots=True)
class TdReport:
    """The TD report body: the TD's measurements as the TDX module reported them."""

    tee_tcb_svn: bytes
    mr_seam: bytes
    mr_signer_seam: bytes
    seam_attributes: bytes
    td_attributes: bytes
    xfam: bytes
    mr_td: bytes
    mr_config_id: bytes
    mr_owner: bytes
    mr_owner_config: bytes
    rtmr: tuple[bytes, bytes, bytes, bytes]
    report_data: bytes
    tee_tcb_svn2: bytes | None = None  # TDX 1.5 only
    mr_service_td: bytes | None = None  # TDX 1.5 only

    @property
    def debug(self) -> bool:
        """TDATTRIBUTES.DEBUG (bit 0): the host can read and change the TD's state."""
        return bool(self.td_attributes[0] & 1)


@dataclass(frozen=True, slots=True)
class QeReport:
    """The Quoting Enclave's SGX report (384 bytes), signed by the PCK key."""

    raw: bytes
    cpu_svn: bytes
    misc_select: int
    attributes: bytes
    mr_enclave: bytes
    mr_signer: bytes
    isv_prod_id: int
    isv_svn: int
    report_data: bytes


@dataclass(frozen=True, slots=True)
class Quote:
    version: int
    att_key_type: int
    tee_type: int
    qe_vendor_id: bytes
    user_data: bytes
    body_type: int
    body: TdReport
    signed: bytes  # header (+ v5 descriptor) + body: what the attestation key signed
    signature: bytes  # r ‖ s
    attestation_key: bytes  # x ‖ y
    qe_report: QeReport
    qe_report_signature: bytes
    qe_auth_data: bytes
    pck_chain_pem: bytes
    raw: bytes  # the quote without trailing zero padding: its identity (what an entry's quoteSha256 hashes)


def _td_report(b: bytes) -> TdReport:
    def f(off: int, n: int) -> bytes:
        return b[off : off + n]

    extra = len(b) == TD_REPORT15_SIZE
    return TdReport(
        tee_tcb_svn=f(0, 16),
        mr_seam=f(16, 48),
        mr_signer_seam=f(64, 48),
        seam_attributes=f(112, 8),
        td_attributes=f(120, 8),
        xfam=f(128, 8),
        mr_td=f(136, 48),
        mr_config_id=f(184, 48),
        mr_owner=f(232, 48),
        mr_owner_config=f(280, 48),
        rtmr=(f(328, 48), f(376, 48), f(424, 48), f(472, 48)),
        report_data=f(520, 64),
        tee_tcb_svn2=f(584, 16) if extra else None,
        mr_service_td=f(600, 48) if extra else None,
    )


def _qe_report(b: bytes) -> QeReport:
    return QeReport(
        raw=b,
        cpu_svn=b[0:16],
        misc_select=int.from_bytes(b[16:20], "little"),
        attributes=b[48:64],
        mr_enclave=b[64:96],
        mr_signer=b[128:160],
        isv_prod_id=int.from_bytes(b[256:258], "little"),
        isv_svn=int.from_bytes(b[258:260], "little"),
        report_data=b[320:384],
    )


class _Reader:
    def __init__(self, data: bytes, pos: int, end: int) -> None:
        self.data, self.pos, self.end = data, pos, end

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > self.end:
            raise _fail(f"{what} runs past the end of its container ({n} bytes at offset {self.pos})")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u16(self, what: str) -> int:
        return int(struct.unpack("<H", self.take(2, what))[0])

    def u32(self, what: str) -> int:
        return int(struct.unpack("<I", self.take(4, what))[0])


def attestation_id(data: bytes) -> bytes:
    """SHA-256 of what a quote's attestation key signed (header, v5 body descriptor, TD report): one
    attestation, however its signatures, certification data or padding are encoded. Only for a quote that
    :func:`parse_quote` accepted (the lengths are read, not checked, here)."""
    if int.from_bytes(data[0:2], "little") == 4:
        end = HEADER_SIZE + TD_REPORT10_SIZE
    else:  # v5: header, body type (2 bytes), body size (4 bytes), body
        end = HEADER_SIZE + 6 + int.from_bytes(data[HEADER_SIZE + 2 : HEADER_SIZE + 6], "little")
    return hashlib.sha256(data[:end]).digest()


def parse_quote(data: bytes, *, zero_padding_only: bool = False) -> Quote:
    """Parse a TDX quote (v4, or v5 with body type 2 or 3); raise :class:`QuoteError` ``quote-malformed``,
    also, with ``zero_padding_only``, when a byte after the signature data is not zero."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise _fail("quote must be bytes")
    data = bytes(data)
    if len(data) > MAX_QUOTE_SIZE:
        raise _fail(f"quote is {len(data)} bytes, more than {MAX_QUOTE_SIZE}")
    r = _Reader(data, 0, len(data))
    version = r.u16("header.version")
    att_key_type = r.u16("header.attestation_key_type")
    tee_type = r.u32("header.tee_type")
    r.take(4, "header.reserved")
    qe_vendor_id = r.take(16, "header.qe_vendor_id")
    user_data = r.take(20, "header.user_data")
    if version not in (4, 5):
        raise _fail(f"quote version {version} is not a TDX quote version (4 or 5)")
    if att_key_type != ATT_KEY_ECDSA_P256:
        raise _fail(f"attestation key type {att_key_type} is not ECDSA P-256 (2)")
    if tee_type != TDX_TEE_TYPE:
        raise _fail(f"TEE type {tee_type:#x} is not TDX (0x81)")
    if version == 4:
        body_type, body_size = 2, TD_REPORT10_SIZE
    else:
        body_type, body_size = r.u16("body.type"), r.u32("body.size")
        if body_type not in BODY_SIZES:
            raise _fail(f"v5 body type {body_type} is not a TD report (2 or 3)")
        if body_size != BODY_SIZES[body_type]:
            raise _fail(f"v5 body size {body_size} does not match body type {body_type}")
    body = _td_report(r.take(body_size, "TD report body"))
    signed = data[: r.pos]
    sig_len = r.u32("signature data length")
    sig = _Reader(data, r.pos, r.pos + sig_len)
    if sig.end > len(data):
        raise _fail(f"signature data length {sig_len} exceeds the quote")
    signature = sig.take(64, "quote signature")
    attestation_key = sig.take(64, "attestation key")
    if sig.u16("certification data type") != CERT_TYPE_QE_REPORT:
        raise _fail("outer certification data is not type 6 (QE report)")
    cert_size = sig.u32("certification data size")
    cert = _Reader(data, sig.pos, sig.pos + cert_size)
    if cert.end != sig.end:
        raise _fail("certification data size does not match the signature data length")
    qe_report = _qe_report(cert.take(QE_REPORT_SIZE, "QE report"))
    qe_report_signature = cert.take(64, "QE report signature")
    qe_auth_data = cert.take(cert.u16("QE auth data size"), "QE auth data")
    if cert.u16("inner certification data type") != CERT_TYPE_PCK_CHAIN:
        raise _fail("inner certification data is not type 5 (PCK certificate chain)")
    chain = cert.take(cert.u32("PCK chain size"), "PCK certificate chain")
    if cert.pos != cert.end:
        raise _fail("bytes left over after the PCK certificate chain")
    if zero_padding_only and data[sig.end :].strip(b"\0"):
        raise _fail(f"the {len(data) - sig.end} bytes after the signature data must be zero padding")
    return Quote(
        version=version,
        att_key_type=att_key_type,
        tee_type=tee_type,
        qe_vendor_id=qe_vendor_id,
        user_data=user_data,
        body_type=body_type,
        body=body,
        signed=signed,
        signature=signature,
        attestation_key=attestation_key,
        qe_report=qe_report,
        qe_report_signature=qe_report_signature,
        qe_auth_data=qe_auth_data,
        pck_chain_pem=chain.rstrip(b"\0"),
        raw=data[: sig.end],
    )
