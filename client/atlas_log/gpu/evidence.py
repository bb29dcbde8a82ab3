"""GPU evidence as users have it, read from files: a folder (``report.txt``, ``certchain.pem``, ``nonce.hex``)
or NVIDIA's serialized evidence JSON (one entry per GPU), and RIM files.

This module does file I/O; the verification it feeds (:func:`atlas_log.gpu.verification.verify_gpu_evidence`)
does none. :func:`verify_gpu_evidence_path` is what ``atlas-log gpu verify`` calls.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509

from atlas_log._encoding import b64decode, hexdecode
from atlas_log.errors import FormatError, GpuEvidenceError
from atlas_log.gpu.policy import Policy
from atlas_log.gpu.report import NONCE_SIZE, Nonce, ReportBytes, parse_report
from atlas_log.gpu.rim import parse_rim, rim_kind_of
from atlas_log.gpu.verdict import GpuVerdict
from atlas_log.gpu.verification import verify_gpu_evidence

__all__ = [
    "GpuEvidence",
    "collection_sha256",
    "load_gpu_evidence",
    "load_rims",
    "parse_evidence_items",
    "parse_serialized_evidence",
    "serialize_evidence",
    "verify_gpu_evidence_path",
]

_MAX_FILE = 16 << 20  # a serialized file for 8 GPUs is about 100 KB
_ARCHITECTURES = frozenset({"HOPPER", "BLACKWELL"})
_SERIALIZED_KEYS = frozenset({"arch", "nonce", "evidence", "certificate"})
# What the NVIDIA Attestation CLI writes: its document, and beside each report what it read of it.
_DOCUMENT_KEYS = frozenset({"evidences", "result_code", "result_message"})
_STATED_KEYS = frozenset({"version", "driver_version", "vbios_version"})
_EVIDENCE_FORMAT = "1.0"
COLLECTION_TAG = b"atlas-log/gpu-evidence/v1"


@dataclass(frozen=True, slots=True)
class GpuEvidence:
    """One GPU's evidence: the raw report, the device chain (PEM), and what the file states beside them
    (the nonce it was made for, the architecture), with ``source`` naming where it came from."""

    report: ReportBytes
    certificate_chain: bytes
    nonce: Nonce | None
    architecture: str | None
    source: str


def _read(path: Path) -> bytes:
    try:
        if path.stat().st_size > _MAX_FILE:
            raise GpuEvidenceError("parse_error", f"{path} is larger than {_MAX_FILE} bytes")
        return path.read_bytes()
    except OSError as exc:
        raise GpuEvidenceError("parse_error", f"cannot read {path}: {exc.strerror}") from exc


def _hex(text: str, what: str, size: int | None = None) -> bytes:
    try:
        return hexdecode(text, what, size, any_case=True)
    except FormatError as exc:
        raise GpuEvidenceError("parse_error", str(exc)) from exc


def parse_serialized_evidence(data: bytes, source: str = "evidence") -> list[GpuEvidence]:
    """NVIDIA's serialized evidence: a JSON array of ``{"arch", "nonce" (64 hex), "evidence" (base64 of the
    report), "certificate" (base64 of the PEM chain)}``, one per GPU, or the document the NVIDIA Attestation
    CLI prints (``nvattest collect-evidence``: ``{"evidences": [...], "result_code": 0, "result_message"}``).
    Items may also state what that CLI writes beside a report: ``version`` (``"1.0"``), ``driver_version``
    and ``vbios_version``, each of which must agree with the report; ``arch`` may be spelt as the SDK's
    evidence files do (``"Hopper"``). Pure; :class:`GpuEvidenceError` ``parse_error`` when it is not exactly
    that."""
    try:
        doc: Any = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise GpuEvidenceError("parse_error", f"{source} is not JSON: {exc}") from exc
    items = _document_items(doc, source) if isinstance(doc, dict) else doc
    if not isinstance(items, list) or not items:
        raise GpuEvidenceError("parse_error", f"{source} is not a non-empty JSON array of GPU evidence")
    canonical, stated = [], []
    for n, item in enumerate(items):
        if not isinstance(item, dict):
            raise GpuEvidenceError("parse_error", f"{source}[{n}] is not a JSON object")
        said = {k: item[k] for k in _STATED_KEYS if k in item}
        plain = {k: v for k, v in item.items() if k not in _STATED_KEYS}
        arch = plain.get("arch")
        if isinstance(arch, str) and arch.upper() in _ARCHITECTURES:
            plain["arch"] = arch.upper()
        canonical.append(plain)
        stated.append(said)
    out = parse_evidence_items(canonical, source)
    for item, said in zip(out, stated, strict=True):
        _check_stated(item, said)
    return out


def _document_items(doc: dict[str, Any], source: str) -> Any:
    """The evidence items of the NVIDIA Attestation CLI's document, which must record a collection that
    succeeded (``result_code`` 0)."""
    if "evidences" not in doc or set(doc) - _DOCUMENT_KEYS:
        raise GpuEvidenceError(
            "parse_error", f"{source} is neither an array of GPU evidence nor NVIDIA's document with 'evidences'"
        )
    code = doc.get("result_code", 0)
    if code != 0:
        message = doc.get("result_message")
        raise GpuEvidenceError(
            "parse_error", f"{source} records a collection that failed (result code {code}: {message})"
        )
    return doc["evidences"]


def _check_stated(item: GpuEvidence, said: dict[str, Any]) -> None:
    """What a file states beside a report (unsigned) agrees with the report (signed), so that nobody reads
    the file's word for the GPU's."""
    for key, value in said.items():
        if not isinstance(value, str):
            raise GpuEvidenceError("parse_error", f"{item.source}: {key} must be text")
    if said.get("version", _EVIDENCE_FORMAT) != _EVIDENCE_FORMAT:
        raise GpuEvidenceError(
            "parse_error", f"{item.source}: evidence format version {said['version']} is not {_EVIDENCE_FORMAT}"
        )
    if "driver_version" not in said and "vbios_version" not in said:
        return
    try:
        opaque = parse_report(item.report).response.opaque_data
    except GpuEvidenceError:
        return  # verification refuses the report itself, naming why
    for key, reported in (("driver_version", opaque.driver_version), ("vbios_version", opaque.vbios_version)):
        if key in said and (reported is None or said[key].upper() != reported.upper()):
            raise GpuEvidenceError(
                "parse_error", f"{item.source} states {key} {said[key]} but its report says {reported}"
            )


def parse_evidence_items(items: Any, source: str = "evidence") -> list[GpuEvidence]:
    """:func:`parse_serialized_evidence` of the already decoded JSON (a submission's ``tee.gpus``)."""
    if not isinstance(items, list) or not items:
        raise GpuEvidenceError("parse_error", f"{source} is not a non-empty JSON array of GPU evidence")
    out = []
    for n, item in enumerate(items):
        where = f"{source}[{n}]"
        if not isinstance(item, dict) or set(item) != _SERIALIZED_KEYS:
            raise GpuEvidenceError("parse_error", f"{where} must have exactly {sorted(_SERIALIZED_KEYS)}")
        if not isinstance(item["arch"], str) or item["arch"] not in _ARCHITECTURES:
            raise GpuEvidenceError("parse_error", f"{where}: unknown architecture {item['arch']!r:.80}")
        try:
            report, chain = b64decode(item["evidence"], "evidence"), b64decode(item["certificate"], "certificate")
        except FormatError as exc:
            raise GpuEvidenceError("parse_error", f"{where}: {exc}") from exc
        nonce = item["nonce"]
        if not isinstance(nonce, str):
            raise GpuEvidenceError("parse_error", f"{where}: nonce must be hex text")
        out.append(
            GpuEvidence(ReportBytes(report), chain, Nonce(_hex(nonce, "nonce", NONCE_SIZE)), item["arch"], where)
        )
    return out


def serialize_evidence(items: Sequence[GpuEvidence]) -> list[dict[str, str]]:
    """The serialized form :func:`parse_evidence_items` reads (every item must state its nonce and
    architecture)."""
    out = []
    for item in items:
        if item.nonce is None or item.architecture is None:
            raise ValueError(f"{item.source} states no nonce or architecture")
        out.append(
            {
                "arch": item.architecture,
                "nonce": item.nonce.hex(),
                "evidence": base64.b64encode(item.report).decode(),
                "certificate": base64.b64encode(item.certificate_chain).decode(),
            }
        )
    return out


def collection_sha256(items: Sequence[GpuEvidence]) -> bytes:
    """SHA-256 of the canonical GPU evidence collection, which a composite REPORTDATA commits to: a tag, then
    for each GPU in order its architecture, nonce, report and certificate chain, each length-prefixed, so that
    neither the JSON's spelling (base64 padding, hex case, member order) nor a boundary between fields can make
    two collections hash alike."""
    h = hashlib.sha256(COLLECTION_TAG + b"\x00" + struct.pack(">I", len(items)))
    for item in items:
        if item.nonce is None or item.architecture is None:
            raise ValueError(f"{item.source} states no nonce or architecture")
        for part in (item.architecture.encode(), item.nonce, item.report, item.certificate_chain):
            h.update(struct.pack(">I", len(part)) + part)
    return h.digest()


def load_gpu_evidence(path: Path) -> list[GpuEvidence]:
    """Evidence from ``path``: a folder with ``report.txt`` (hex), ``certchain.pem`` and optionally
    ``nonce.hex``, or a serialized evidence JSON file. Raises :class:`GpuEvidenceError` ``parse_error``."""
    if path.is_dir():
        report_text = _read(path / "report.txt").decode("ascii", "replace").strip()
        nonce_file = path / "nonce.hex"
        nonce = None
        if nonce_file.exists():
            nonce = Nonce(_hex(_read(nonce_file).decode("ascii", "replace").strip(), "nonce.hex", NONCE_SIZE))
        return [
            GpuEvidence(
                ReportBytes(_hex(report_text, "report.txt")),
                _read(path / "certchain.pem"),
                nonce,
                None,
                str(path),
            )
        ]
    return parse_serialized_evidence(_read(path), str(path))


def load_rims(paths: Sequence[Path]) -> tuple[bytes | None, bytes | None]:
    """``(driver RIM, VBIOS RIM)`` from RIM files, sorted by the version each names. Raises
    :class:`GpuEvidenceError` ``rim_parse_error`` for an unreadable or malformed RIM, or two of one kind."""
    found: dict[str, bytes] = {}
    for path in paths:
        try:
            document = path.read_bytes()
        except OSError as exc:
            raise GpuEvidenceError("rim_parse_error", f"cannot read {path}: {exc.strerror}") from exc
        kind = rim_kind_of(parse_rim(document).version)
        if kind in found:
            raise GpuEvidenceError("rim_parse_error", f"more than one {kind} RIM given ({path})")
        found[kind] = document
    return found.get("driver"), found.get("vbios")


def verify_gpu_evidence_path(
    path: Path,
    *,
    at: int,
    nonce: bytes | None = None,
    rims: Sequence[Path] = (),
    policy: Policy | None = None,
    ocsp: Sequence[Path] = (),
    device_root: x509.Certificate | None = None,
    rim_root: x509.Certificate | None = None,
) -> list[GpuVerdict]:
    """Verify every GPU's evidence in ``path`` at Unix time ``at``, one verdict per GPU in file order.

    ``nonce`` is the nonce the relying party chose; without it, each report is checked against the nonce its
    evidence states (``nonce.hex`` or the serialized ``nonce``), which proves consistency but not freshness.
    The same RIMs apply to every GPU; ``ocsp`` names DER OCSP responses for the device and RIM chains (each
    applies to the certificate it names). ``device_root`` / ``rim_root`` replace the pinned roots. Raises
    :class:`GpuEvidenceError` for unreadable or malformed input.
    """
    driver_rim, vbios_rim = load_rims(rims)
    responses = [_read(p) for p in ocsp]
    verdicts = []
    for item in load_gpu_evidence(path):
        expected = nonce if nonce is not None else item.nonce
        if expected is None:
            raise GpuEvidenceError("parse_error", f"{item.source} states no nonce: give the one you chose")
        verdicts.append(
            verify_gpu_evidence(
                item.report,
                item.certificate_chain,
                nonce=expected,
                at=at,
                driver_rim=driver_rim,
                vbios_rim=vbios_rim,
                policy=policy,
                evidence_nonce=item.nonce,
                architecture=item.architecture,
                device_root=device_root,
                rim_root=rim_root,
                ocsp=responses,
            )
        )
    return verdicts
