"""A simulated TDX platform, built the way Intel's is, under a test root of its own.

It issues everything a verifier sees: a root CA, a PCK Platform CA, a PCK leaf certificate carrying the
SGX extension (FMSPC, PCE-ID, TCB SVNs), a TCB signing certificate, signed TCB info and QE identity, both
CRLs, and v4/v5 quotes with chosen REPORTDATA, measurements and attributes, signed by an attestation key
that a QE report (signed by the PCK key) vouches for. Verify its quotes with
``verify_quote(..., roots=[platform.root_fingerprint])``; the Intel root is never involved.

It exists for development (``make run``) and for tests of every rejection real data cannot produce. It is
not a TEE and proves nothing about where code ran.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from atlas_log.files import write_atomic
from atlas_log.tdx import der
from atlas_log.tdx.collateral import Collateral
from atlas_log.tdx.pck import SGX_EXTENSION_OID
from atlas_log.tdx.quote import INTEL_QE_VENDOR_ID, TD_REPORT10_SIZE, TD_REPORT15_SIZE

__all__ = ["SimulatedPlatform", "SimulatedProvider", "TcbLevel"]

DAY = 86_400
QE_MRSIGNER = bytes.fromhex("dc9e2a7c6f948f17474e34a7fc43ed030f7c1563f1babddf6340c82e0e54a8c5")


@dataclass(frozen=True, slots=True)
class TcbLevel:
    sgx: tuple[int, ...]
    pcesvn: int
    tdx: tuple[int, ...]
    status: str
    advisories: tuple[str, ...] = ()


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Atlas Log simulated TDX platform"),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "ZZ"),
        ]
    )


def _time(t: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(t, dt.UTC)


def _iso(t: int) -> str:
    return _time(t).strftime("%Y-%m-%dT%H:%M:%SZ")


def _raw(sig_der: bytes) -> bytes:
    r, s = decode_dss_signature(sig_der)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Certificate | None,
    issuer_key: ec.EllipticCurvePrivateKey,
    start: int,
    end: int,
    *,
    ca: bool,
    extra: Sequence[x509.ExtensionType] = (),
) -> x509.Certificate:
    b = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer.subject if issuer else _name(subject))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_time(start))
        .not_valid_after(_time(end))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
    )
    for ext in extra:
        b = b.add_extension(ext, critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def _sgx_extension(fmspc: bytes, pce_id: bytes, sgx: Sequence[int], pcesvn: int, cpusvn: bytes) -> bytes:
    base = SGX_EXTENSION_OID
    tcb = b"".join(
        der.tlv(der.SEQUENCE, der.encode_oid(f"{base}.2.{i + 1}") + der.encode_int(v)) for i, v in enumerate(sgx)
    )
    tcb += der.tlv(der.SEQUENCE, der.encode_oid(f"{base}.2.17") + der.encode_int(pcesvn))
    tcb += der.tlv(der.SEQUENCE, der.encode_oid(f"{base}.2.18") + der.tlv(der.OCTET_STRING, cpusvn))
    items = [
        der.encode_oid(f"{base}.1") + der.tlv(der.OCTET_STRING, hashlib.sha256(fmspc).digest()[:16]),
        der.encode_oid(f"{base}.2") + der.tlv(der.SEQUENCE, tcb),
        der.encode_oid(f"{base}.3") + der.tlv(der.OCTET_STRING, pce_id),
        der.encode_oid(f"{base}.4") + der.tlv(der.OCTET_STRING, fmspc),
        der.encode_oid(f"{base}.5") + der.tlv(der.ENUMERATED, b"\x00"),
    ]
    return der.tlv(der.SEQUENCE, b"".join(der.tlv(der.SEQUENCE, i) for i in items))


def _crl(
    issuer: x509.Certificate, key: ec.EllipticCurvePrivateKey, start: int, end: int, revoked: Sequence[int]
) -> bytes:
    b = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.subject)
        .last_update(_time(start))
        .next_update(_time(end))
        .add_extension(x509.CRLNumber(1), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
    )
    for serial in revoked:
        b = b.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(_time(start)).build()
        )
    return b.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def _comps(svns: Sequence[int], category: str) -> list[dict[str, Any]]:
    return [{"svn": s, "category": category, "type": f"component {i}"} for i, s in enumerate(svns)]


@dataclass
class SimulatedPlatform:
    """One simulated TDX machine and the PCS that serves its collateral. Create with :meth:`create`."""

    root_key: ec.EllipticCurvePrivateKey
    root: x509.Certificate
    pck_ca_key: ec.EllipticCurvePrivateKey
    pck_ca: x509.Certificate
    pck_key: ec.EllipticCurvePrivateKey
    pck: x509.Certificate
    tcb_key: ec.EllipticCurvePrivateKey
    tcb_cert: x509.Certificate
    attestation_key: ec.EllipticCurvePrivateKey
    fmspc: bytes
    pce_id: bytes
    sgx_svns: tuple[int, ...]
    pcesvn: int
    tee_tcb_svn: bytes
    created: int
    qe_isvsvn: int = 4
    tcb_levels: tuple[TcbLevel, ...] = ()
    qe_identity_mrsigner: bytes = QE_MRSIGNER
    revoked_pck: bool = False
    revoked_pck_ca: bool = False
    collateral_days: int = 30
    tcb_evaluation_data_number: int = 17
    qe_signatures: dict[tuple[int, bytes], bytes] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def create(
        cls,
        now: int | None = None,
        *,
        fmspc: bytes = bytes.fromhex("00906ED50000"),
        sgx_svns: Sequence[int] = (2, 2, 2, 2, 3, 1, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0),
        pcesvn: int = 11,
        tee_tcb_svn: bytes = bytes([3, 1, 2]) + bytes(13),
        cert_years: int = 10,
    ) -> SimulatedPlatform:
        """A fresh platform whose certificates are valid from a day before ``now`` for ``cert_years``."""
        t = int(dt.datetime.now(dt.UTC).timestamp()) if now is None else now
        start, end = t - DAY, t + cert_years * 365 * DAY
        root_key, pck_ca_key, pck_key, tcb_key = _key(), _key(), _key(), _key()
        root = _cert("Atlas Log Simulated SGX Root CA", root_key, None, root_key, start, end, ca=True)
        pck_ca = _cert("Intel SGX PCK Platform CA", pck_ca_key, root, root_key, start, end, ca=True)
        tcb_cert = _cert("Atlas Log Simulated SGX TCB Signing", tcb_key, root, root_key, start, end, ca=False)
        sgx = tuple(sgx_svns)
        ext = x509.UnrecognizedExtension(
            x509.ObjectIdentifier(SGX_EXTENSION_OID),
            _sgx_extension(fmspc, b"\x00\x00", sgx, pcesvn, bytes(sgx)),
        )
        pck = _cert(
            "Atlas Log Simulated SGX PCK Certificate", pck_key, pck_ca, pck_ca_key, start, end, ca=False, extra=[ext]
        )
        levels = (
            TcbLevel(sgx, pcesvn, (0, 0, *tee_tcb_svn[2:]), "UpToDate"),
            TcbLevel(
                tuple(max(0, s - 1) for s in sgx), max(0, pcesvn - 1), (0,) * 16, "OutOfDate", ("INTEL-SA-00837",)
            ),
        )
        return cls(
            root_key,
            root,
            pck_ca_key,
            pck_ca,
            pck_key,
            pck,
            tcb_key,
            tcb_cert,
            _key(),
            fmspc,
            b"\x00\x00",
            sgx,
            pcesvn,
            tee_tcb_svn,
            t,
            tcb_levels=levels,
        )

    def variant(self, **changes: Any) -> SimulatedPlatform:
        """The same platform with some attributes changed (e.g. ``revoked_pck=True``)."""
        return replace(self, **changes)

    @property
    def root_fingerprint(self) -> str:
        """SHA-256 (hex) of the root's SubjectPublicKeyInfo: pass it as ``roots=[...]`` to trust this platform."""
        spki = self.root.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return hashlib.sha256(spki).hexdigest()

    # --- collateral ------------------------------------------------------------------------------------

    def _signed(self, member: str, body: dict[str, Any]) -> bytes:
        text = json.dumps(body, separators=(",", ":"))
        sig = _raw(self.tcb_key.sign(text.encode(), ec.ECDSA(hashes.SHA256())))
        return ('{"' + member + '":' + text + ',"signature":"' + sig.hex() + '"}').encode()

    def tcb_info(self, issue: int) -> dict[str, Any]:
        zeros48 = "00" * 48
        return {
            "id": "TDX",
            "version": 3,
            "issueDate": _iso(issue),
            "nextUpdate": _iso(issue + self.collateral_days * DAY),
            "fmspc": self.fmspc.hex().upper(),
            "pceId": self.pce_id.hex().upper(),
            "tcbType": 0,
            "tcbEvaluationDataNumber": self.tcb_evaluation_data_number,
            "tdxModule": {"mrsigner": zeros48, "attributes": "0000000000000000", "attributesMask": "FFFFFFFFFFFFFFFF"},
            "tdxModuleIdentities": [
                {
                    "id": f"TDX_{self.tee_tcb_svn[1]:02X}",
                    "mrsigner": zeros48,
                    "attributes": "0000000000000000",
                    "attributesMask": "FFFFFFFFFFFFFFFF",
                    "tcbLevels": [
                        {"tcb": {"isvsvn": self.tee_tcb_svn[0]}, "tcbDate": _iso(issue), "tcbStatus": "UpToDate"}
                    ],
                }
            ],
            "tcbLevels": [
                {
                    "tcb": {
                        "sgxtcbcomponents": _comps(lv.sgx, "BIOS"),
                        "pcesvn": lv.pcesvn,
                        "tdxtcbcomponents": _comps(lv.tdx, "OS/VMM"),
                    },
                    "tcbDate": _iso(issue),
                    "tcbStatus": lv.status,
                    **({"advisoryIDs": list(lv.advisories)} if lv.advisories else {}),
                }
                for lv in self.tcb_levels
            ],
        }

    def qe_identity(self, issue: int) -> dict[str, Any]:
        return {
            "id": "TD_QE",
            "version": 2,
            "issueDate": _iso(issue),
            "nextUpdate": _iso(issue + self.collateral_days * DAY),
            "tcbEvaluationDataNumber": self.tcb_evaluation_data_number,
            "miscselect": "00000000",
            "miscselectMask": "FFFFFFFF",
            "attributes": "11000000000000000000000000000000",
            "attributesMask": "FBFFFFFFFFFFFFFF0000000000000000",
            "mrsigner": self.qe_identity_mrsigner.hex().upper(),
            "isvprodid": 2,
            "tcbLevels": [{"tcb": {"isvsvn": 4}, "tcbDate": _iso(issue), "tcbStatus": "UpToDate"}],
        }

    def collateral(self, issue: int | None = None) -> Collateral:
        """Collateral issued at ``issue`` (default: the platform's creation time), valid ``collateral_days``."""
        t = self.created if issue is None else issue
        end = t + self.collateral_days * DAY
        chain = _pem(self.tcb_cert) + _pem(self.root)
        return Collateral(
            tcb_info=self._signed("tcbInfo", self.tcb_info(t)),
            tcb_info_issuer_chain=chain,
            qe_identity=self._signed("enclaveIdentity", self.qe_identity(t)),
            qe_identity_issuer_chain=chain,
            pck_crl=_crl(self.pck_ca, self.pck_ca_key, t, end, [self.pck.serial_number] if self.revoked_pck else []),
            pck_crl_issuer_chain=_pem(self.pck_ca) + _pem(self.root),
            root_ca_crl=_crl(
                self.root, self.root_key, t, t + 365 * DAY, [self.pck_ca.serial_number] if self.revoked_pck_ca else []
            ),
        )

    # --- quotes ----------------------------------------------------------------------------------------

    def quote(
        self,
        report_data: bytes = bytes(64),
        *,
        version: int = 4,
        body_type: int = 2,
        mr_td: bytes | None = None,
        rtmr: Sequence[bytes] | None = None,
        mr_config_id: bytes = bytes(48),
        td_attributes: bytes = bytes.fromhex("0000001000000000"),
        tee_tcb_svn: bytes | None = None,
        tee_tcb_svn2: bytes | None = None,
        bind_attestation_key: bool = True,
        qe_mrsigner: bytes = QE_MRSIGNER,
    ) -> bytes:
        """A quote over a TD report with these values, signed like a real one."""
        if len(report_data) != 64:
            raise ValueError("REPORTDATA is 64 bytes")
        if version == 4 and body_type != 2:
            raise ValueError("v4 quotes carry body type 2")
        svn = self.tee_tcb_svn if tee_tcb_svn is None else tee_tcb_svn
        mr_td = hashlib.sha384(b"atlas-log simulated TD").digest() if mr_td is None else mr_td
        rtmrs = list(rtmr) if rtmr is not None else [hashlib.sha384(b"rtmr%d" % i).digest() for i in range(4)]
        body = (
            svn
            + bytes(48)
            + bytes(48)
            + bytes(8)
            + td_attributes
            + bytes.fromhex("e718060000000000")
            + mr_td
            + mr_config_id
            + bytes(48)
            + bytes(48)
            + b"".join(rtmrs)
            + report_data
        )
        assert len(body) == TD_REPORT10_SIZE
        if body_type == 3:
            body += (svn if tee_tcb_svn2 is None else tee_tcb_svn2) + bytes(48)
            assert len(body) == TD_REPORT15_SIZE
        header = struct.pack("<HHI", version, 2, 0x81) + bytes(4) + INTEL_QE_VENDOR_ID + os.urandom(16) + bytes(4)
        if version == 5:
            header += struct.pack("<HI", body_type, len(body))
        signed = header + body
        att_pub = self.attestation_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )[1:]
        auth = bytes(range(32))
        qe_rd = (hashlib.sha256(att_pub + auth).digest() if bind_attestation_key else bytes(32)) + bytes(32)
        qe_report = (
            bytes(self.sgx_svns)
            + bytes(4)
            + bytes(28)
            + bytes([0x11])
            + bytes(15)
            + hashlib.sha256(b"atlas-log simulated QE").digest()
            + bytes(32)
            + qe_mrsigner
            + bytes(96)
            + struct.pack("<HH", 2, self.qe_isvsvn)
            + bytes(60)
            + qe_rd
        )
        # A real QE certifies its attestation key once and reuses that signed report in every quote.
        key = (self.pck.serial_number, qe_report)
        qe_sig = self.qe_signatures.get(key)
        if qe_sig is None:
            qe_sig = self.qe_signatures[key] = _raw(self.pck_key.sign(qe_report, ec.ECDSA(hashes.SHA256())))
        chain = _pem(self.pck) + _pem(self.pck_ca) + _pem(self.root) + b"\0"
        cert_data = qe_report + qe_sig + struct.pack("<H", len(auth)) + auth + struct.pack("<HI", 5, len(chain)) + chain
        quote_sig = _raw(self.attestation_key.sign(signed, ec.ECDSA(hashes.SHA256())))
        sig_data = quote_sig + att_pub + struct.pack("<HI", 6, len(cert_data)) + cert_data
        return signed + struct.pack("<I", len(sig_data)) + sig_data

    # --- persistence (dev mode keeps one platform across restarts) ----------------------------------------

    _KEYS = ("root_key", "pck_ca_key", "pck_key", "tcb_key", "attestation_key")
    _CERTS = ("root", "pck_ca", "pck", "tcb_cert")

    def save(self, folder: Path) -> None:
        """Write the platform (private keys included, mode 0600) to ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        state = {
            "fmspc": self.fmspc.hex(),
            "pce_id": self.pce_id.hex(),
            "sgx_svns": list(self.sgx_svns),
            "pcesvn": self.pcesvn,
            "tee_tcb_svn": self.tee_tcb_svn.hex(),
            "created": self.created,
            "keys": {
                k: getattr(self, k)
                .private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
                )
                .decode()
                for k in self._KEYS
            },
            "certs": {c: _pem(getattr(self, c)).decode() for c in self._CERTS},
            "tcb_levels": [
                [list(lv.sgx), lv.pcesvn, list(lv.tdx), lv.status, list(lv.advisories)] for lv in self.tcb_levels
            ],
        }
        path = folder / "platform.json"
        write_atomic(path, json.dumps(state).encode())

    @classmethod
    def load(cls, folder: Path) -> SimulatedPlatform:
        state = json.loads((folder / "platform.json").read_text())
        keys: dict[str, ec.EllipticCurvePrivateKey] = {}
        for k, v in state["keys"].items():
            key = serialization.load_pem_private_key(v.encode(), None)
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise ValueError(f"simulated platform key {k} is not an EC key")
            keys[k] = key
        certs = {k: x509.load_pem_x509_certificate(v.encode()) for k, v in state["certs"].items()}
        levels = tuple(TcbLevel(tuple(a), b, tuple(c), d, tuple(e)) for a, b, c, d, e in state["tcb_levels"])
        return cls(
            keys["root_key"],
            certs["root"],
            keys["pck_ca_key"],
            certs["pck_ca"],
            keys["pck_key"],
            certs["pck"],
            keys["tcb_key"],
            certs["tcb_cert"],
            keys["attestation_key"],
            bytes.fromhex(state["fmspc"]),
            bytes.fromhex(state["pce_id"]),
            tuple(state["sgx_svns"]),
            state["pcesvn"],
            bytes.fromhex(state["tee_tcb_svn"]),
            state["created"],
            tcb_levels=levels,
        )


@dataclass(frozen=True, slots=True)
class SimulatedProvider:
    """Quotes from a simulated platform, as a :class:`~atlas_log.submission.QuoteProvider` (development and
    tests only)."""

    platform: SimulatedPlatform

    def quote(self, report_data: bytes) -> bytes:
        return self.platform.quote(report_data)
