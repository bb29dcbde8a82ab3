"""Verification of one GPU's attestation evidence: report, device chain, and optionally its RIMs.

Pure: bytes in, a :class:`~atlas_log.gpu.verdict.GpuVerdict` out, the time passed in. Malformed input (a
report, chain or RIM that does not parse) raises :class:`~atlas_log.errors.GpuEvidenceError`; everything
that parses is judged, and every failing check is reported, the first one (in
:data:`~atlas_log.gpu.verdict.FAILURE_ORDER`) as the verdict's ``code``.

The checks, in order:

1. the report parses (DSP0274 1.1 §10.11, :mod:`atlas_log.gpu.report`);
2. its ECDSA P-384 signature over SHA-384 of request ‖ response-without-signature verifies with the leaf
   certificate's key (DSP0274 1.1 §14, L1 transcript of one exchange) — ``signature_invalid``;
3. the request's nonce (and the evidence file's, when it states one) equals the relying party's —
   ``nonce_mismatch``;
4. the report's FWID (opaque field 20), when present, equals the leaf certificate's — ``fwid_mismatch``;
5. the device chain validates to the pinned NVIDIA Device Identity CA at ``at`` (RFC 5280 §6) —
   ``chain_invalid``, ``certificate_not_yet_valid``, ``certificate_expired``;
6. the OCSP responses given (or required by the policy) for the device chain hold and call no certificate
   revoked (RFC 6960, :mod:`atlas_log.gpu.ocsp`) — ``certificate_revoked``, ``certificate_status_unknown``,
   ``ocsp_invalid``, ``ocsp_missing``;
7. for each RIM given: it parses, names the report's version, its chain validates to the pinned CoRIM root
   at ``at``, its XML signature verifies, and OCSP says the same of its chain — ``<kind>_rim_…``;
8. no index is claimed by both RIMs, and every active golden measurement matches — ``rim_index_conflict``,
   ``measurement_mismatch``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from atlas_log.certificates import load_pem_chain, subject_text
from atlas_log.errors import GpuEvidenceError
from atlas_log.gpu.chain import ChainCheck, check_chain, clear_issuance_cache
from atlas_log.gpu.device import device_identity
from atlas_log.gpu.measurements import compare_measurements
from atlas_log.gpu.ocsp import RevocationCheck, check_revocation, clear_ocsp_caches
from atlas_log.gpu.policy import Policy
from atlas_log.gpu.report import NONCE_SIZE, AttestationReport, parse_report
from atlas_log.gpu.rim import GoldenMeasurement, Rim, RimKind, clear_rim_caches, parse_rim, rim_signature_problem
from atlas_log.gpu.roots import CORIM_ROOT_SHA256, DEVICE_IDENTITY_ROOT_SHA256, pinned_root
from atlas_log.gpu.verdict import FAILURE_ORDER, GpuVerdict, RimCheck

__all__ = ["clear_caches", "expected_rim_ids", "verify_gpu_evidence", "verify_rim"]

_MESSAGES = {
    "signature_invalid": "the report's signature does not verify with the device certificate's key",
    "nonce_mismatch": "the report was not made for the nonce the relying party chose",
    "architecture_mismatch": "the evidence names another GPU architecture than its certificate chain",
    "fwid_mismatch": "the report's FWID differs from the device certificate's",
    "chain_invalid": "the device certificate chain does not lead to the NVIDIA Device Identity CA",
    "certificate_not_yet_valid": "a device certificate is not yet valid at the evaluation time",
    "certificate_expired": "a device certificate has expired at the evaluation time",
    "certificate_revoked": "OCSP says a device certificate is revoked (or on hold)",
    "certificate_status_unknown": "the OCSP responder does not know a device certificate",
    "ocsp_invalid": "an OCSP response for the device chain is not to be believed",
    "ocsp_missing": "the policy requires OCSP and no response speaks for a device certificate",
    "rim_version_mismatch": "the {kind} RIM is for another version than the report's",
    "rim_missing": "the policy requires a {kind} RIM and none was given",
    "rim_chain_invalid": "the {kind} RIM's signing chain does not lead to the NVIDIA CoRIM signing root",
    "rim_signature_invalid": "the {kind} RIM's XML signature does not verify",
    "rim_certificate_not_yet_valid": "a {kind} RIM certificate is not yet valid at the evaluation time",
    "rim_certificate_expired": "a {kind} RIM certificate has expired at the evaluation time",
    "rim_certificate_revoked": "OCSP says a {kind} RIM certificate is revoked (or on hold)",
    "rim_certificate_status_unknown": "the OCSP responder does not know a {kind} RIM certificate",
    "rim_ocsp_invalid": "an OCSP response for the {kind} RIM's chain is not to be believed",
    "rim_ocsp_missing": "the policy requires OCSP and no response speaks for a {kind} RIM certificate",
    "rim_index_conflict": "the driver and VBIOS RIMs both claim a measurement index",
    "measurement_mismatch": "measurements differ from the RIMs' golden values",
}


def expected_rim_ids(report: AttestationReport, architecture: str | None) -> tuple[str | None, str | None]:
    """The ids NVIDIA's RIM service gives the driver and VBIOS RIMs for this report (None when the report
    lacks the fields): ``NV_GPU_DRIVER_GH100_<driver>`` on Hopper, ``NV_GPU_CC_DRIVER_<CHIP_INFO or GB100>_
    <driver>`` on Blackwell, ``NV_GPU_VBIOS_<PROJECT>_<PROJECT_SKU>_<CHIP_SKU>_<VBIOS version without dots>``."""
    o = report.response.opaque_data
    driver = o.driver_version
    driver_id = None
    if driver is not None and architecture == "HOPPER":
        driver_id = f"NV_GPU_DRIVER_GH100_{driver}"
    elif driver is not None and architecture == "BLACKWELL":
        driver_id = f"NV_GPU_CC_DRIVER_{o.chip_info or 'GB100'}_{driver}"
    vbios, parts = o.vbios_version, (o.project, o.project_sku, o.chip_sku)
    vbios_id = None
    if vbios is not None and all(p is not None for p in parts):
        vbios_id = f"NV_GPU_VBIOS_{parts[0]}_{parts[1]}_{parts[2]}_{vbios.replace('.', '')}"
    return driver_id, vbios_id


def clear_caches() -> None:
    """Forget what verification memoises by exact bytes (device chains, issuance checks, RIM parses and
    signatures, OCSP parses and signers): a verdict never depends on it, only the time it takes."""
    load_pem_chain.cache_clear()
    clear_issuance_cache()
    clear_rim_caches()
    clear_ocsp_caches()


def _signature_valid(report: AttestationReport, leaf: x509.Certificate) -> bool:
    key = leaf.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP384R1):
        return False
    raw = report.response.signature
    der = encode_dss_signature(int.from_bytes(raw[:48], "big"), int.from_bytes(raw[48:], "big"))
    try:
        key.verify(der, report.signed, ec.ECDSA(hashes.SHA384()))
    except InvalidSignature:
        return False
    return True


def _chain(certs: list[x509.Certificate], root: x509.Certificate | None, pin: str, at: int) -> ChainCheck:
    anchor = root if root is not None else pinned_root(certs, pin)
    if anchor is None:
        return ChainCheck(tuple(certs), "the chain does not end in the pinned root", False, False)
    return check_chain(certs, anchor, at)


def _revocation(
    chain: ChainCheck, ocsp: Sequence[bytes], policy: Policy, at: int, *, skip_leaf: bool
) -> tuple[tuple[str, ...], tuple[RevocationCheck, ...]]:
    """The revocation failures of a chain (unprefixed) and what OCSP said of each certificate. Nothing is
    judged when no response is given and none is required, nor for a chain whose path is invalid (its
    issuers are not known to be NVIDIA's, so neither are their responders)."""
    if (not ocsp and not policy.require_ocsp) or chain.path_problem is not None:
        return (), ()
    checks = check_revocation(chain.certificates, ocsp, at=at, skip_leaf=skip_leaf)
    failures = []
    for check in checks:
        if check.status == "revoked" or (check.status == "on_hold" and not policy.allow_on_hold):
            failures.append("certificate_revoked")
        elif check.status == "unknown":
            failures.append("certificate_status_unknown")
        elif check.status == "invalid":
            failures.append("ocsp_invalid")
        elif check.status == "missing" and policy.require_ocsp:
            failures.append("ocsp_missing")
    return tuple(dict.fromkeys(failures)), checks


def _rim_failures(
    rim: Rim,
    at: int,
    root: x509.Certificate | None,
    policy: Policy,
    ocsp: Sequence[bytes],
) -> tuple[tuple[str, ...], tuple[RevocationCheck, ...]]:
    chain = _chain(list(rim.certificates), root, CORIM_ROOT_SHA256, at)
    revoked, checks = _revocation(chain, ocsp, policy, at, skip_leaf=False)
    failures = [f"rim_{f}" for f in (*chain.failures, *revoked)]
    if policy.check_rim_signatures and rim_signature_problem(rim) is not None:
        failures.append("rim_signature_invalid")
    return tuple(sorted(failures, key=lambda f: FAILURE_ORDER.index(f"driver_{f}"))), checks


def verify_rim(
    document: bytes | Rim,
    *,
    at: int,
    root: x509.Certificate | None = None,
    check_signature: bool = True,
    ocsp: Sequence[bytes] = (),
    policy: Policy | None = None,
) -> tuple[str, ...]:
    """The failures of one RIM on its own, in order: ``rim_chain_invalid``, ``rim_signature_invalid``,
    ``rim_certificate_not_yet_valid``, ``rim_certificate_expired``, and from the OCSP responses ``ocsp``
    (DER) ``rim_certificate_revoked`` … ``rim_ocsp_missing`` (empty when it verifies at ``at``). ``root``
    replaces the pinned CoRIM root. Raises :class:`GpuEvidenceError` ``rim_parse_error`` (or
    ``ocsp_parse_error``)."""
    rim = document if isinstance(document, Rim) else parse_rim(document)
    base = policy or Policy()
    if not check_signature:
        base = dataclasses.replace(base, check_rim_signatures=False)
    return _rim_failures(rim, at, root, base, ocsp)[0]


def _rim(
    kind: RimKind,
    document: bytes,
    wanted_version: str | None,
    expected_id: str | None,
    root: x509.Certificate | None,
    at: int,
    policy: Policy,
    ocsp: Sequence[bytes],
) -> tuple[RimCheck, Rim | None]:
    rim = parse_rim(document, f"{kind}_rim_parse_error")
    checked, revocation = _rim_failures(rim, at, root, policy, ocsp)
    failures = list(checked)
    if rim.version != wanted_version:
        failures.insert(0, "rim_version_mismatch")
    check = RimCheck(
        kind,
        expected_id,
        rim.tag_id,
        rim.version,
        subject_text(rim.signer),
        str(rim.signer.serial_number),
        tuple(failures),
        revocation,
    )
    # A RIM for another version says nothing about this firmware: its measurements are not compared.
    return check, (None if rim.version != wanted_version else rim)


def verify_gpu_evidence(
    report: bytes,
    certificate_chain: bytes,
    *,
    nonce: bytes,
    at: int,
    driver_rim: bytes | None = None,
    vbios_rim: bytes | None = None,
    policy: Policy | None = None,
    evidence_nonce: bytes | None = None,
    architecture: str | None = None,
    device_root: x509.Certificate | None = None,
    rim_root: x509.Certificate | None = None,
    ocsp: Sequence[bytes] = (),
) -> GpuVerdict:
    """Verify one GPU's evidence at Unix time ``at``.

    ``report`` is the raw report (request ‖ response), ``certificate_chain`` the device chain as PEM, leaf
    first; ``nonce`` the 32 bytes the relying party chose. ``driver_rim`` / ``vbios_rim`` are RIM documents.
    ``evidence_nonce`` and ``architecture`` are what a serialized evidence file states beside the report
    (each must agree). ``device_root`` / ``rim_root`` replace the pinned roots (tests, private deployments);
    by default the chains must end in the certificates NVIDIA's fingerprints pin. ``ocsp`` holds DER OCSP
    responses for the device and RIM chains (each is matched to the certificate its CertID names).

    Raises :class:`GpuEvidenceError` (``parse_error``, ``driver_rim_parse_error``, ``vbios_rim_parse_error``)
    (``ocsp_parse_error``) for input that does not parse, and :class:`ValueError` for a nonce that is not 32 bytes.
    """
    if len(nonce) != NONCE_SIZE:
        raise ValueError(f"the expected nonce must be {NONCE_SIZE} bytes, not {len(nonce)}")
    policy = policy or Policy()
    parsed = parse_report(report)
    try:
        certs = list(load_pem_chain(bytes(certificate_chain)))
    except ValueError as exc:
        raise GpuEvidenceError("parse_error", f"the device certificate chain is malformed: {exc}") from exc
    identity = device_identity(certs)
    opaque = parsed.response.opaque_data

    failures: list[str] = []
    if not _signature_valid(parsed, certs[0]):
        failures.append("signature_invalid")
    if parsed.nonce != nonce or (evidence_nonce is not None and evidence_nonce != nonce):
        failures.append("nonce_mismatch")
    if architecture is not None and architecture != identity.architecture:
        failures.append("architecture_mismatch")
    if opaque.fwid is not None and opaque.fwid != identity.fwid:
        failures.append("fwid_mismatch")
    device = _chain(certs, device_root, DEVICE_IDENTITY_ROOT_SHA256, at)
    failures.extend(device.failures)
    revoked, revocation = _revocation(device, ocsp, policy, at, skip_leaf=True)
    failures.extend(revoked)

    driver_id, vbios_id = expected_rim_ids(parsed, identity.architecture)
    rim_checks: list[RimCheck] = []
    golden: dict[RimKind, Mapping[int, GoldenMeasurement]] = {}
    wanted = {
        "driver": (driver_rim, opaque.driver_version, driver_id, policy.require_driver_rim),
        "vbios": (vbios_rim, opaque.vbios_version, vbios_id, policy.require_vbios_rim),
    }
    for kind, (document, version, rim_id, required) in wanted.items():
        k: RimKind = "driver" if kind == "driver" else "vbios"
        if document is None:
            if required:
                failures.append(f"{k}_rim_missing")
            continue
        check, usable = _rim(k, document, version, rim_id, rim_root, at, policy, ocsp)
        rim_checks.append(check)
        failures.extend(f"{k}_{f}" for f in check.failures)
        if usable is not None:
            golden[k] = usable.golden

    comparison = compare_measurements(parsed.response.measurements, golden, opaque.nvdec0_status)
    if comparison.conflicts:
        failures.append("rim_index_conflict")
    if any(comparison.mismatched.values()):
        failures.append("measurement_mismatch")

    ordered = tuple(sorted(set(failures), key=FAILURE_ORDER.index))
    code = ordered[0] if ordered else None
    return GpuVerdict(
        accept=not ordered,
        code=code,
        reason=None if code is None else _reason(code, device.path_problem),
        failures=ordered,
        architecture=identity.architecture,
        driver_version=opaque.driver_version,
        vbios_version=opaque.vbios_version,
        ueid=identity.ueid,
        hwmodel=identity.hwmodel,
        fwid=None if opaque.fwid is None else opaque.fwid.hex(),
        device_chain=tuple(subject_text(c) for c in device.certificates),
        driver_rim_id=driver_id,
        vbios_rim_id=vbios_id,
        rims=tuple(rim_checks),
        measurements_checked=bool(golden),
        mismatched_indices={k: v for k, v in comparison.mismatched.items() if v},
        revocation=revocation,
    )


def _reason(code: str, chain_problem: str | None) -> str:
    for kind in ("driver", "vbios"):
        if code.startswith(f"{kind}_rim_"):
            return _MESSAGES[code[len(kind) + 1 :]].format(kind=kind)
    message = _MESSAGES[code]
    return f"{message}: {chain_problem}" if code == "chain_invalid" and chain_problem else message
