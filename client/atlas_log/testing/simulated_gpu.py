"""A simulated NVIDIA GPU (Hopper or Blackwell), built the way NVIDIA's are, under test roots of its own.

It issues everything a GPU verifier sees (the layouts are in the README of the NVIDIA vectors):

* a device certificate chain of NVIDIA's shape: five P-384 certificates signed with ecdsa-with-SHA384, a
  self-signed "Device Identity" root, an architecture "Identity" CA, a "Provisioner ICA", the per-device
  ``GH100 A01 GSP BROM`` CA (its common name names the chip, which is how a verifier tells the architecture)
  and the ``GH100 A01 GSP FMC LF`` attestation leaf, which carries the FWID extension (``2.23.133.5.4.1`` on
  Hopper, the TCG DICE TcbInfo ``2.23.133.5.4.1.1`` on Blackwell) and whose serial number is the GPU's ueid;
* SPDM 1.1 attestation reports (DMTF DSP0274 1.1 §10.11): a GET_MEASUREMENTS request with the relying
  party's 32-byte nonce followed by the MEASUREMENTS response with 64 DMTF SHA-384 measurement blocks and
  NVIDIA's opaque data fields, signed with ECDSA P-384 over SHA-384 of request ‖ response-without-signature;
* driver and VBIOS reference integrity manifests (ISO/IEC 19770-2 SWID tags with TCG RIM attributes and an
  enveloped XML-DSig 1.1 signature, C14N 1.1, ECDSA P-384/SHA-384) whose golden values are the GPU's
  measurements, signed through a four-certificate chain to a test "CoRIM signing" root, and the ids NVIDIA's
  RIM service names them by;
* NVIDIA's serialized evidence JSON, for one GPU or many (:func:`serialize_gpu_evidence`).

Verify its evidence with ``verify_gpu_evidence(..., device_root=gpu.device_root, rim_root=gpu.rim_root)``.
With the default, pinned NVIDIA roots it fails ``chain_invalid``: a simulated GPU never passes as NVIDIA's.

It exists for development (``make run``, ``atlas-log demo``) and for tests of rejections real data cannot
produce. It is not a GPU and proves nothing about where code ran.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal
from xml.sax.saxutils import quoteattr

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from lxml import etree
from signxml.algorithms import CanonicalizationMethod, DigestAlgorithm, SignatureConstructionMethod, SignatureMethod
from signxml.signer import XMLSigner

from atlas_log.files import write_atomic
from atlas_log.gpu.evidence import GpuEvidence
from atlas_log.gpu.opaque import NVDEC0_DISABLED
from atlas_log.gpu.report import NONCE_SIZE, Nonce, ReportBytes, parse_report
from atlas_log.gpu.rim import RimKind
from atlas_log.gpu.verification import expected_rim_ids
from atlas_log.tdx import der

__all__ = [
    "DRIVER_RIM_INDICES",
    "VBIOS_RIM_INDICES",
    "SimulatedGpu",
    "default_measurements",
    "serialize_gpu_evidence",
]

Architecture = Literal["HOPPER", "BLACKWELL"]

DAY = 86_400
# NVIDIA's device certificates never expire: notAfter 9999-12-31T23:59:59Z (RFC 5280 §4.1.2.5).
NO_EXPIRY = 253_402_300_799
_BLOCKS = 64
_DIGEST = 48
# RIM indices (SPDM index − 1) each RIM covers, as NVIDIA's do (README of the vectors, "Matching rule").
DRIVER_RIM_INDICES: tuple[int, ...] = (7, *range(21, 41))
VBIOS_RIM_INDICES: tuple[int, ...] = (*range(0, 7), *range(8, 13))
# Driver indices whose golden value has a second alternative, as NVIDIA's "MixedMeasurement" entries do.
_ALTERNATIVE_INDICES = frozenset(range(22, 27))
_CHIPS: dict[str, str] = {"HOPPER": "GH100", "BLACKWELL": "GB100"}
_ORGANIZATION = "Atlas Log simulated GPU"
# RFC 5612: the private enterprise number reserved for documentation, in place of NVIDIA's in the RIMs.
_MANUFACTURER_ID = "32473"

_HOPPER_FWID_OID = "2.23.133.5.4.1"
_DICE_TCB_INFO_OID = "2.23.133.5.4.1.1"
_SHA384_OID = "2.16.840.1.101.3.4.2.2"

_SWID = "http://standards.iso.org/iso/19770/-2/2015/schema.xsd"
_SHA384_NS = "http://www.w3.org/2001/04/xmlenc#sha384"
_TCG_RIM = "https://trustedcomputinggroup.org/resource/tcg-reference-integrity-manifest-rim-information-model/"

# SPDM 1.1 (DSP0274 §10.11): version, GET_MEASUREMENTS / MEASUREMENTS codes, Param1 bit 0 = signature
# requested, Param2 0xFF = every block; a DMTF block: MeasurementSpecification 1, value type 1 (a digest of
# mutable firmware), a 48-byte value.
_SPDM_11, _GET_MEASUREMENTS, _MEASUREMENTS = 0x11, 0xE0, 0x60
_SIGNATURE_REQUESTED, _ALL_BLOCKS, _DMTF, _MUTABLE_FIRMWARE_DIGEST = 0x01, 0xFF, 0x01, 0x01

# NVIDIA's opaque data field types (FIELD_NAMES in atlas_log.gpu.opaque), in the order NVIDIA's GPUs write them.
_VBIOS_VERSION = 6
_BOARD_ID = 14
_CHIP_SKU = 15
_CHIP_SKU_MOD = 16
_PROJECT = 17
_PROJECT_SKU = 18
_PROJECT_SKU_MOD = 19
_DRIVER_VERSION = 3
_GPU_INFO = 4
_MSRSCNT = 12
_CPRINFO = 13
_NVDEC0_STATUS = 11
_FWID = 20
_PROTECTED_PCIE_STATUS = 21
_OPAQUE_DATA_VERSION = 34
_FEATURE_FLAG = 36


def _time(t: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(t, dt.UTC)


def _now() -> int:
    return int(dt.datetime.now(dt.UTC).timestamp())


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP384R1())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _name(cn: str, serial: str | None = None) -> x509.Name:
    attributes = [] if serial is None else [x509.NameAttribute(NameOID.SERIAL_NUMBER, serial)]
    attributes += [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "ZZ"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORGANIZATION),
        x509.NameAttribute(NameOID.COMMON_NAME, cn),
    ]
    return x509.Name(attributes)


def _issue(
    subject: x509.Name,
    key: ec.EllipticCurvePublicKey,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    start: int,
    end: int,
    *,
    ca: bool | None,
    serial: int | None = None,
    path_length: int | None = None,
    extra: Sequence[x509.ExtensionType] = (),
) -> x509.Certificate:
    """A certificate as NVIDIA's are made, ecdsa-with-SHA384: CAs with critical basicConstraints and critical
    keyUsage keyCertSign + cRLSign; signers with critical keyUsage digitalSignature. ``ca=None`` is an
    attestation leaf, which has no basicConstraints (NVIDIA's FMC leaf has none); ``ca=False`` states CA:FALSE
    (NVIDIA's RIM signer does)."""
    b = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key)
        .serial_number(x509.random_serial_number() if serial is None else serial)
        .not_valid_before(_time(start))
        .not_valid_after(_time(end))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
    )
    if ca is not None:
        b = b.add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
    signs = ca is True
    b = b.add_extension(
        x509.KeyUsage(
            digital_signature=not signs,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=signs,
            crl_sign=signs,
            encipher_only=False,
            decipher_only=False,
        ),
        critical=True,
    )
    for ext in extra:
        b = b.add_extension(ext, critical=False)
    return b.sign(issuer_key, hashes.SHA384())


def _digest_pair(fwid: bytes) -> bytes:
    return der.tlv(der.SEQUENCE, der.encode_oid(_SHA384_OID) + der.tlv(der.OCTET_STRING, fwid))


def _fwid_extension(
    architecture: str, fwid: bytes, issuer_key: ec.EllipticCurvePublicKey
) -> x509.UnrecognizedExtension:
    """The leaf's FWID extension. Hopper: ``SEQUENCE { INTEGER 1, SubjectPublicKeyInfo, SEQUENCE { sha384,
    OCTET STRING fwid } }``, where NVIDIA's key is the issuing BROM CA's. Blackwell: a TCG DICE TcbInfo
    (TCG DICE Attestation Architecture, ``DiceTcbInfo``) with vendor, model and ``[6] fwids``."""
    if architecture == "HOPPER":
        spki = issuer_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        value = der.tlv(der.SEQUENCE, der.encode_int(1) + spki + _digest_pair(fwid))
        oid = _HOPPER_FWID_OID
    else:
        # IMPLICIT context tags: [0] vendor and [1] model are primitive UTF8Strings, [6] fwids a constructed
        # SEQUENCE OF FWID.
        value = der.tlv(
            der.SEQUENCE,
            der.tlv(0x80, _ORGANIZATION.encode())
            + der.tlv(0x81, _CHIPS[architecture].encode())
            # [6] fwids
            + der.tlv(0xA6, _digest_pair(fwid)),
        )
        oid = _DICE_TCB_INFO_OID
    return x509.UnrecognizedExtension(x509.ObjectIdentifier(oid), value)


def _text(value: str, size: int = 0) -> bytes:
    """ASCII, NUL-terminated and NUL-padded to at least ``size`` bytes, as NVIDIA's text fields are."""
    raw = value.encode("ascii") + b"\0"
    return raw.ljust(size, b"\0")


def _vbios_bytes(version: str) -> bytes:
    """The 8-byte VBIOS_VERSION field of a version NVIDIA prints as bytes 3, 2, 1, 0, 4 joined by dots."""
    parts = [int(p, 16) for p in version.split(".")]
    if len(parts) != 5 or any(not 0 <= p <= 0xFF for p in parts):
        raise ValueError(f"VBIOS version {version!r} is not five dotted hex bytes such as 96.00.AA.00.01")
    b3, b2, b1, b0, b4 = parts
    return bytes([b0, b1, b2, b3, b4, 0, 0, 0])


def _firmware_measurement(*parts: object) -> bytes:
    return hashlib.sha384(repr(("atlas-log simulated GPU firmware", *parts)).encode()).digest()


def default_measurements(architecture: str, driver_version: str, vbios_version: str) -> dict[int, bytes]:
    """The measurements (by SPDM index, 1..64) of simulated firmware of these versions: a SHA-384 per index a
    RIM covers, derived from the firmware's version alone (two GPUs with the same firmware measure the same,
    so one pair of RIMs serves both), and zeros elsewhere."""
    out = {}
    for spdm in range(1, _BLOCKS + 1):
        rim = spdm - 1
        if rim in DRIVER_RIM_INDICES:
            out[spdm] = _firmware_measurement(architecture, "driver", driver_version, rim)
        elif rim in VBIOS_RIM_INDICES:
            out[spdm] = _firmware_measurement(architecture, "vbios", vbios_version, rim)
        else:
            out[spdm] = bytes(_DIGEST)
    return out


def _raw_signature(sig_der: bytes) -> bytes:
    r, s = decode_dss_signature(sig_der)
    return r.to_bytes(48, "big") + s.to_bytes(48, "big")


@dataclass(frozen=True)
class SimulatedGpu:
    """One simulated GPU, its firmware, and the test PKI that vouches for it. Create with :meth:`create`.

    ``device_chain`` is leaf first, root last (five certificates, as NVIDIA's); ``rim_chain`` is signer
    first, CoRIM root last (four); each ``*_keys`` tuple holds the private keys in the same order.
    ``measurements`` are what the GPU reports, by SPDM index (1..64); the RIMs' golden values are the same
    values, so an unmodified report matches them.
    """

    architecture: Architecture
    device_keys: tuple[ec.EllipticCurvePrivateKey, ...] = field(repr=False)
    device_chain: tuple[x509.Certificate, ...] = field(repr=False)
    rim_keys: tuple[ec.EllipticCurvePrivateKey, ...] = field(repr=False)
    rim_chain: tuple[x509.Certificate, ...] = field(repr=False)
    fwid: bytes
    driver_version: str
    vbios_version: str
    project: str
    project_sku: str
    chip_sku: str
    measurements: Mapping[int, bytes] = field(repr=False)
    created: int
    nvdec0_status: int = NVDEC0_DISABLED
    feature_flag: int = 0

    @classmethod
    def create(
        cls,
        now: int | None = None,
        *,
        architecture: Architecture = "HOPPER",
        driver_version: str = "580.0.0",
        vbios_version: str = "96.00.AA.00.01",
        project: str = "SIM0",
        project_sku: str = "0001",
        chip_sku: str = "001",
        measurements: Mapping[int, bytes] | None = None,
        nvdec0_status: int = NVDEC0_DISABLED,
        rim_years: int = 10,
    ) -> SimulatedGpu:
        """A fresh GPU under fresh roots. Device certificates are valid from a day before ``now`` and never
        expire (as NVIDIA's); the RIM signing chain is valid for ``rim_years``. ``measurements`` (SPDM index →
        48 bytes) replace the defaults of :func:`default_measurements` at those indices. The defaults name
        no real NVIDIA firmware: the project ``SIM0`` appears in no NVIDIA RIM id."""
        if architecture not in _CHIPS:
            raise ValueError(f"architecture must be HOPPER or BLACKWELL, not {architecture!r}")
        _vbios_bytes(vbios_version)
        t = _now() if now is None else now
        start = t - DAY
        chip = _CHIPS[architecture]
        root_key, identity_key, provisioner_key = _key(), _key(), _key()
        root_name = _name("Atlas Log Simulated Device Identity CA")
        root = _issue(root_name, root_key.public_key(), root_name, root_key, start, NO_EXPIRY, ca=True)
        identity_name = _name(f"Atlas Log Simulated {chip} Identity")
        identity = _issue(identity_name, identity_key.public_key(), root_name, root_key, start, NO_EXPIRY, ca=True)
        provisioner_name = _name(f"Atlas Log Simulated {chip} Provisioner ICA 1")
        provisioner = _issue(
            provisioner_name, provisioner_key.public_key(), identity_name, identity_key, start, NO_EXPIRY, ca=True
        )
        rim_keys, rim_chain = _rim_pki(chip, start, rim_years)
        values = default_measurements(architecture, driver_version, vbios_version)
        for index, value in (measurements or {}).items():
            if index not in values or len(value) != _DIGEST:
                raise ValueError(f"measurement {index}: SPDM indices are 1..{_BLOCKS} and values {_DIGEST} bytes")
            values[index] = value
        # The device CA, leaf and FWID are per GPU: _with_new_device fills them in under the provisioner.
        gpu = cls(
            architecture=architecture,
            device_keys=(provisioner_key, identity_key, root_key),
            device_chain=(provisioner, identity, root),
            rim_keys=rim_keys,
            rim_chain=rim_chain,
            fwid=b"",
            driver_version=driver_version,
            vbios_version=vbios_version,
            project=project,
            project_sku=project_sku,
            chip_sku=chip_sku,
            measurements=values,
            created=t,
            nvdec0_status=nvdec0_status,
        )
        return gpu._with_new_device(t)

    def _with_new_device(self, now: int) -> SimulatedGpu:
        """This GPU's firmware and PKI with a new device: a new BROM CA, attestation key, leaf and FWID."""
        chip = _CHIPS[self.architecture]
        provisioner_key, provisioner = self.device_keys[-3], self.device_chain[-3]
        brom_key, leaf_key = _key(), _key()
        brom_serial = x509.random_serial_number()
        brom_name = _name(f"{chip} A01 GSP BROM", f"{brom_serial:X}")
        brom = _issue(
            brom_name,
            brom_key.public_key(),
            provisioner.subject,
            provisioner_key,
            now - DAY,
            NO_EXPIRY,
            ca=True,
            serial=brom_serial,
        )
        fwid = os.urandom(_DIGEST)
        leaf_serial = x509.random_serial_number()
        leaf = _issue(
            _name(f"{chip} A01 GSP FMC LF", f"{leaf_serial:X}"),
            leaf_key.public_key(),
            brom_name,
            brom_key,
            now - DAY,
            NO_EXPIRY,
            ca=None,
            serial=leaf_serial,
            extra=[_fwid_extension(self.architecture, fwid, brom_key.public_key())],
        )
        return replace(
            self,
            device_keys=(leaf_key, brom_key, *self.device_keys[-3:]),
            device_chain=(leaf, brom, *self.device_chain[-3:]),
            fwid=fwid,
        )

    def sibling(self, now: int | None = None) -> SimulatedGpu:
        """Another GPU of the same model and firmware under the same roots (as the GPUs of one machine are):
        its own device CA, attestation key, ueid and FWID, the same measurements, RIMs and RIM chain."""
        return self._with_new_device(_now() if now is None else now)

    def variant(self, **changes: Any) -> SimulatedGpu:
        """The same GPU with some attributes changed (e.g. ``driver_version="581.0.0"``, ``nvdec0_status=0xAA``,
        or all 64 ``measurements``); the keys and certificates stay as they are. Its RIMs follow the change:
        use :meth:`rim` with ``version`` or ``golden`` for RIMs that do not."""
        return replace(self, **changes)

    def with_validity(
        self, certificate: Literal["leaf", "rim_signer"], *, not_before: int, not_after: int
    ) -> SimulatedGpu:
        """The same GPU with its attestation leaf or its RIM signer certificate reissued (same key, subject,
        serial and extensions) for another validity window: expired or not-yet-valid evidence and RIMs."""
        chain, keys = (
            (self.device_chain, self.device_keys) if certificate == "leaf" else (self.rim_chain, self.rim_keys)
        )
        old = chain[0]
        b = (
            x509.CertificateBuilder()
            .subject_name(old.subject)
            .issuer_name(old.issuer)
            .public_key(old.public_key())
            .serial_number(old.serial_number)
            .not_valid_before(_time(not_before))
            .not_valid_after(_time(not_after))
        )
        for ext in old.extensions:
            b = b.add_extension(ext.value, ext.critical)
        new = b.sign(keys[1], hashes.SHA384())
        if certificate == "leaf":
            return replace(self, device_chain=(new, *chain[1:]))
        return replace(self, rim_chain=(new, *chain[1:]))

    # --- identity ------------------------------------------------------------------------------------------

    @property
    def device_root(self) -> x509.Certificate:
        """The test "Device Identity" root: pass it as ``verify_gpu_evidence(..., device_root=)``."""
        return self.device_chain[-1]

    @property
    def rim_root(self) -> x509.Certificate:
        """The test "CoRIM signing" root: pass it as ``verify_gpu_evidence(..., rim_root=)``."""
        return self.rim_chain[-1]

    @property
    def leaf(self) -> x509.Certificate:
        return self.device_chain[0]

    @property
    def ueid(self) -> str:
        """The GPU's ueid as verifiers state it: the leaf certificate's serial number in decimal."""
        return str(self.leaf.serial_number)

    @property
    def certificate_chain(self) -> bytes:
        """The device chain as the GPU driver hands it out: PEM, leaf first, root last."""
        return b"".join(_pem(c) for c in self.device_chain)

    # --- attestation reports --------------------------------------------------------------------------------

    def _opaque_data(self, fwid: bytes) -> bytes:
        fields = [
            (_VBIOS_VERSION, _vbios_bytes(self.vbios_version)),
            (_BOARD_ID, hashlib.sha256(self.project.encode()).digest()[:4]),
            (_CHIP_SKU, _text(self.chip_sku, 9)),
            (_CHIP_SKU_MOD, _text("0", 5)),
            (_PROJECT, _text(self.project)),
            (_PROJECT_SKU, _text(self.project_sku)),
            (_PROJECT_SKU_MOD, bytes(2)),
            (_DRIVER_VERSION, _text(self.driver_version)),
            (_GPU_INFO, bytes(8)),
            (_MSRSCNT, b"".join((1).to_bytes(4, "little") for _ in range(64))),
            (_CPRINFO, bytes(4)),
            (_NVDEC0_STATUS, bytes([self.nvdec0_status])),
            (_FWID, fwid),
            (_PROTECTED_PCIE_STATUS, bytes([NVDEC0_DISABLED])),
            (_OPAQUE_DATA_VERSION, (1).to_bytes(2, "little")),
            (_FEATURE_FLAG, self.feature_flag.to_bytes(2, "little")),
        ]
        return b"".join(t.to_bytes(2, "little") + len(v).to_bytes(2, "little") + v for t, v in fields)

    def report(
        self, nonce: bytes, *, measurements: Mapping[int, bytes] | None = None, fwid: bytes | None = None
    ) -> ReportBytes:
        """An attestation report for ``nonce``: the 37-byte GET_MEASUREMENTS request ‖ the signed MEASUREMENTS
        response (DSP0274 1.1 §10.11), 64 blocks, signed with the leaf's key as a GPU signs (ECDSA P-384 over
        SHA-384 of every byte before the signature, r ‖ s). ``measurements`` replace the GPU's values at
        those SPDM indices (evidence of other firmware); ``fwid`` replaces the FWID the report states."""
        if len(nonce) != NONCE_SIZE:
            raise ValueError(f"the nonce must be {NONCE_SIZE} bytes, not {len(nonce)}")
        values = dict(self.measurements)
        values.update(measurements or {})
        request = bytes([_SPDM_11, _GET_MEASUREMENTS, _SIGNATURE_REQUESTED, _ALL_BLOCKS]) + nonce + b"\x00"
        record = b"".join(
            bytes([index, _DMTF])
            + (3 + len(value)).to_bytes(2, "little")
            + bytes([_MUTABLE_FIRMWARE_DIGEST])
            + len(value).to_bytes(2, "little")
            + value
            for index, value in sorted(values.items())
        )
        opaque = self._opaque_data(self.fwid if fwid is None else fwid)
        response = (
            bytes([_SPDM_11, _MEASUREMENTS, 0, 0, len(values)])
            + len(record).to_bytes(3, "little")
            + record
            + os.urandom(NONCE_SIZE)  # the responder's own nonce: signed, compared with nothing
            + len(opaque).to_bytes(2, "little")
            + opaque
        )
        signed = request + response
        signature = self.device_keys[0].sign(signed, ec.ECDSA(hashes.SHA384()))
        return ReportBytes(signed + _raw_signature(signature))

    def evidence(self, nonce: bytes) -> GpuEvidence:
        """This GPU's evidence for ``nonce`` as :func:`~atlas_log.gpu.evidence.load_gpu_evidence` returns it."""
        return GpuEvidence(
            self.report(nonce), self.certificate_chain, Nonce(nonce), self.architecture, f"simulated GPU {self.ueid}"
        )

    def gpu_evidence(self, nonce: bytes) -> list[GpuEvidence]:
        """This one GPU's evidence for ``nonce``, as a submission's GPU evidence provider gives it
        (:class:`~atlas_log.submission.GpuEvidenceProvider`)."""
        return [self.evidence(nonce)]

    # --- reference integrity manifests ----------------------------------------------------------------------

    @property
    def rim_ids(self) -> tuple[str, str]:
        """``(driver RIM id, VBIOS RIM id)``: the ids a verifier asks NVIDIA's RIM service for, as
        :func:`~atlas_log.gpu.verification.expected_rim_ids` derives them from this GPU's reports."""
        driver, vbios = expected_rim_ids(parse_report(self.report(bytes(NONCE_SIZE))), self.architecture)
        assert driver is not None and vbios is not None  # every simulated report states the fields
        return driver, vbios

    def golden_measurements(self, kind: RimKind) -> dict[int, tuple[bytes, ...]]:
        """The golden values of the ``kind`` RIM by RIM index (SPDM index − 1): the GPU's measurement, and
        for a few driver indices a second acceptable alternative (as NVIDIA's "MixedMeasurement" entries)."""
        indices = DRIVER_RIM_INDICES if kind == "driver" else VBIOS_RIM_INDICES
        out: dict[int, tuple[bytes, ...]] = {}
        for index in indices:
            value = self.measurements[index + 1]
            if kind == "driver" and index in _ALTERNATIVE_INDICES:
                out[index] = (value, _firmware_measurement(self.architecture, "alternative", value))
            else:
                out[index] = (value,)
        return out

    def rim(
        self,
        kind: RimKind,
        *,
        version: str | None = None,
        golden: Mapping[int, Sequence[bytes]] | None = None,
    ) -> bytes:
        """The signed ``kind`` RIM for this GPU's firmware: a SWID tag naming ``version`` (default: the GPU's
        driver or VBIOS version) with 64 measurement resources, the active ones holding
        :meth:`golden_measurements` (``golden`` replaces entries by RIM index), enveloped-signed with the
        RIM signer's key; the KeyInfo carries the signing chain, signer first, CoRIM root last."""
        chip = _CHIPS[self.architecture]
        colloquial = version or (self.driver_version if kind == "driver" else self.vbios_version)
        values = self.golden_measurements(kind)
        values.update({i: tuple(v) for i, v in (golden or {}).items()})
        resources = []
        for index in range(_BLOCKS):
            alternatives = values.get(index, (bytes(_DIGEST),))
            hash_attributes = " ".join(f'ns2:Hash{n}="{v.hex()}"' for n, v in enumerate(alternatives))
            resources.append(
                f'        <ns0:Resource type="Measurement" index="{index}" active="{index in values}" '
                f'alternatives="{len(alternatives)}" {hash_attributes} name="Measurement_{index}" size="{_DIGEST}"/>\n'
            )
        tag_id = hashlib.sha384(repr((kind, chip, colloquial, self.rim_root.serial_number)).encode()).hexdigest()
        document = (
            f'<SoftwareIdentity xmlns="{_SWID}" xmlns:ns0="{_SWID}" xmlns:ns2="{_SHA384_NS}" corpus="false" '
            f'name="{chip}" patch="false" supplemental="false" tagId="{tag_id}" version="1.0" tagVersion="0">\n'
            f'    <ns0:Entity name="{_ORGANIZATION}" role="softwareCreator tagCreator"/>\n'
            f'    <ns0:Meta xmlns:ns1="{_TCG_RIM}" colloquialVersion={quoteattr(colloquial)} edition="GPU" '
            f'product="{chip}" revision="r1" PayloadType="direct" ns1:BindingSpec="RIMIM" '
            f'ns1:BindingSpecVersion="1.01" ns1:PlatformManufacturerId="{_MANUFACTURER_ID}" '
            f'ns1:PlatformManufacturerStr="{_ORGANIZATION}" ns1:PlatformModel="{chip}" '
            f'ns1:FirmwareManufacturer="{_ORGANIZATION}" ns1:FirmwareManufacturerId="{_MANUFACTURER_ID}"/>\n'
            f"    <ns0:Payload>\n{''.join(resources)}    </ns0:Payload>\n"
            "</SoftwareIdentity>"
        )
        signer = XMLSigner(
            method=SignatureConstructionMethod.enveloped,
            signature_algorithm=SignatureMethod.ECDSA_SHA384,
            digest_algorithm=DigestAlgorithm.SHA384,
            c14n_algorithm=CanonicalizationMethod.CANONICAL_XML_1_1,
        )
        signed = signer.sign(
            etree.fromstring(document.encode()),
            key=self.rim_keys[0],
            cert=[_pem(c).decode() for c in self.rim_chain],
        )
        return bytes(etree.tostring(signed))

    def driver_rim(self, **kwargs: Any) -> bytes:
        """:meth:`rim` for the driver."""
        return self.rim("driver", **kwargs)

    def vbios_rim(self, **kwargs: Any) -> bytes:
        """:meth:`rim` for the VBIOS."""
        return self.rim("vbios", **kwargs)

    def rims(self) -> dict[str, bytes]:
        """Both RIMs by the ids NVIDIA's RIM service would serve them under (what a RIM stand-in serves)."""
        driver_id, vbios_id = self.rim_ids
        return {driver_id: self.driver_rim(), vbios_id: self.vbios_rim()}

    # --- revocation (the OCSP responses NVIDIA's OCSP service would give) ----------------------------------

    def ocsp_response(
        self,
        chain: Literal["device", "rim"],
        position: int,
        *,
        now: int | None = None,
        status: Literal["good", "revoked", "on_hold", "unknown"] = "good",
        lifetime_s: int | None = 7 * DAY,
        delegated: bool = False,
        nonce: bytes | None = None,
    ) -> bytes:
        """A DER OCSP response (RFC 6960) for the certificate at ``position`` of the device or RIM chain (leaf
        first), produced at ``now`` and current for ``lifetime_s`` (None: no nextUpdate), signed by its
        issuer's key or, ``delegated``, by a fresh responder certificate the issuer signs for OCSP."""
        certs, keys = (self.device_chain, self.device_keys) if chain == "device" else (self.rim_chain, self.rim_keys)
        if not 0 <= position < len(certs) - 1:
            raise ValueError(f"the {chain} chain has certificates 0..{len(certs) - 2} below its root")
        t = _now() if now is None else now
        cert, issuer, issuer_key = certs[position], certs[position + 1], keys[position + 1]
        responder, responder_key = issuer, issuer_key
        if delegated:
            responder_key = _key()
            responder = _issue(
                _name("Atlas Log Simulated OCSP Responder"),
                responder_key.public_key(),
                issuer.subject,
                issuer_key,
                t - DAY,
                t + 365 * DAY,
                ca=False,
                extra=[x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING])],
            )
        cert_status = {"good": ocsp.OCSPCertStatus.GOOD, "unknown": ocsp.OCSPCertStatus.UNKNOWN}.get(
            status, ocsp.OCSPCertStatus.REVOKED
        )
        revoked = cert_status == ocsp.OCSPCertStatus.REVOKED
        builder = (
            ocsp.OCSPResponseBuilder()
            .add_response(
                cert=cert,
                issuer=issuer,
                algorithm=hashes.SHA384(),
                cert_status=cert_status,
                this_update=_time(t),
                next_update=None if lifetime_s is None else _time(t + lifetime_s),
                revocation_time=_time(t - DAY) if revoked else None,
                revocation_reason=(
                    (x509.ReasonFlags.certificate_hold if status == "on_hold" else x509.ReasonFlags.key_compromise)
                    if revoked
                    else None
                ),
            )
            .responder_id(ocsp.OCSPResponderEncoding.HASH, responder)
        )
        if delegated:
            builder = builder.certificates([responder])
        if nonce is not None:
            builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
        return builder.sign(responder_key, hashes.SHA384()).public_bytes(serialization.Encoding.DER)

    def ocsp_responses(self, now: int | None = None) -> list[bytes]:
        """``good`` responses for every certificate NVIDIA's OCSP service speaks for: the device chain below
        its root except the GPU-made attestation leaf, and the RIM chain below its root."""
        device = [self.ocsp_response("device", p, now=now) for p in range(1, len(self.device_chain) - 1)]
        return device + [self.ocsp_response("rim", p, now=now) for p in range(len(self.rim_chain) - 1)]

    # --- persistence (dev mode keeps one GPU across restarts) -------------------------------------------------

    def save(self, folder: Path) -> None:
        """Write the GPU (private keys included, mode 0600) to ``folder/gpu.json``."""
        folder.mkdir(parents=True, exist_ok=True)

        def key_pem(key: ec.EllipticCurvePrivateKey) -> str:
            return key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ).decode()

        state = {
            "architecture": self.architecture,
            "device_keys": [key_pem(k) for k in self.device_keys],
            "device_chain": [_pem(c).decode() for c in self.device_chain],
            "rim_keys": [key_pem(k) for k in self.rim_keys],
            "rim_chain": [_pem(c).decode() for c in self.rim_chain],
            "fwid": self.fwid.hex(),
            "driver_version": self.driver_version,
            "vbios_version": self.vbios_version,
            "project": self.project,
            "project_sku": self.project_sku,
            "chip_sku": self.chip_sku,
            "measurements": {str(i): v.hex() for i, v in sorted(self.measurements.items())},
            "created": self.created,
            "nvdec0_status": self.nvdec0_status,
            "feature_flag": self.feature_flag,
        }
        write_atomic(folder / "gpu.json", json.dumps(state, indent=1).encode())

    @classmethod
    def load(cls, folder: Path) -> SimulatedGpu:
        """The GPU :meth:`save` wrote to ``folder``. Raises :class:`OSError`, or :class:`ValueError` for a
        file that is not one."""
        state = json.loads((folder / "gpu.json").read_text())

        def key(pem: str) -> ec.EllipticCurvePrivateKey:
            k = serialization.load_pem_private_key(pem.encode(), None)
            if not isinstance(k, ec.EllipticCurvePrivateKey):
                raise ValueError("a simulated GPU key is not an EC key")
            return k

        def certs(pems: list[str]) -> tuple[x509.Certificate, ...]:
            return tuple(x509.load_pem_x509_certificate(p.encode()) for p in pems)

        return cls(
            architecture=state["architecture"],
            device_keys=tuple(key(p) for p in state["device_keys"]),
            device_chain=certs(state["device_chain"]),
            rim_keys=tuple(key(p) for p in state["rim_keys"]),
            rim_chain=certs(state["rim_chain"]),
            fwid=bytes.fromhex(state["fwid"]),
            driver_version=state["driver_version"],
            vbios_version=state["vbios_version"],
            project=state["project"],
            project_sku=state["project_sku"],
            chip_sku=state["chip_sku"],
            measurements={int(i): bytes.fromhex(v) for i, v in state["measurements"].items()},
            created=state["created"],
            nvdec0_status=state["nvdec0_status"],
            feature_flag=state["feature_flag"],
        )


def _rim_pki(
    chip: str, start: int, years: int
) -> tuple[tuple[ec.EllipticCurvePrivateKey, ...], tuple[x509.Certificate, ...]]:
    """A RIM signing chain of NVIDIA's shape: CoRIM root → Reference Value CA → L3 CA (pathLen 0) → L4 signer
    (CA:FALSE, digitalSignature). Returned signer first."""
    end = start + years * 365 * DAY
    root_key, ca_key, l3_key, signer_key = _key(), _key(), _key(), _key()
    root_name = _name("Atlas Log Simulated CoRIM signing Root CA")
    root = _issue(root_name, root_key.public_key(), root_name, root_key, start, start + 30 * 365 * DAY, ca=True)
    ca_name = _name(f"Atlas Log Simulated Reference Value {chip} CA")
    ca = _issue(ca_name, ca_key.public_key(), root_name, root_key, start, end, ca=True)
    l3_name = _name(f"Atlas Log Simulated Reference Value L3 {chip} 001")
    l3 = _issue(l3_name, l3_key.public_key(), ca_name, ca_key, start, end, ca=True, path_length=0)
    signer = _issue(
        _name("Atlas Log Simulated RIM L4 Signer"), signer_key.public_key(), l3_name, l3_key, start, end, ca=False
    )
    return (signer_key, l3_key, ca_key, root_key), (signer, l3, ca, root)


def serialize_gpu_evidence(gpus: Sequence[SimulatedGpu], nonce: bytes) -> bytes:
    """NVIDIA's serialized evidence for these GPUs, all for ``nonce`` (as NVIDIA's SDK collects it): a JSON
    array of ``{"arch", "nonce" (hex), "evidence" (base64 of the report), "certificate" (base64 of the PEM
    chain)}``, one per GPU, as :func:`~atlas_log.gpu.evidence.load_gpu_evidence` reads it."""
    items = [
        {
            "arch": gpu.architecture,
            "nonce": nonce.hex(),
            "evidence": base64.b64encode(gpu.report(nonce)).decode(),
            "certificate": base64.b64encode(gpu.certificate_chain).decode(),
        }
        for gpu in gpus
    ]
    return json.dumps(items, indent=1).encode()
