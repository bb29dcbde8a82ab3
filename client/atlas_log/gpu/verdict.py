"""The outcome of verifying one GPU's evidence, and its JSON form."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from atlas_log.gpu.ocsp import RevocationCheck

__all__ = ["FAILURE_ORDER", "GpuVerdict", "RimCheck", "repeated_device"]

_RIM_CHECKS = (
    "rim_parse_error",
    "rim_version_mismatch",
    "rim_missing",
    "rim_chain_invalid",
    "rim_signature_invalid",
    "rim_certificate_not_yet_valid",
    "rim_certificate_expired",
    "rim_certificate_revoked",
    "rim_certificate_status_unknown",
    "rim_ocsp_invalid",
    "rim_ocsp_missing",
)
FAILURE_ORDER: tuple[str, ...] = (
    "parse_error",
    "signature_invalid",
    "nonce_mismatch",
    "architecture_mismatch",
    "fwid_mismatch",
    "chain_invalid",
    "certificate_not_yet_valid",
    "certificate_expired",
    "certificate_revoked",
    "certificate_status_unknown",
    "ocsp_invalid",
    "ocsp_missing",
    *(f"driver_{c}" for c in _RIM_CHECKS),
    *(f"vbios_{c}" for c in _RIM_CHECKS),
    "rim_index_conflict",
    "measurement_mismatch",
)
"""Every failure code, in the order that makes a verdict's ``code`` the first failing check (the order of
the NVIDIA vectors' ``reason``)."""


@dataclass(frozen=True, slots=True)
class RimCheck:
    """What was checked of one RIM: its kind, the RIM id the report asks for, the RIM's own identity (tag id,
    version, signer) and the failures that concern it (unprefixed, e.g. ``chain_invalid``)."""

    kind: str
    expected_id: str | None
    tag_id: str
    version: str
    signer: str
    signer_serial: str
    failures: tuple[str, ...]
    revocation: tuple[RevocationCheck, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "expected_id": self.expected_id,
            "tag_id": self.tag_id,
            "version": self.version,
            "signer": self.signer,
            "signer_serial": self.signer_serial,
            "failures": list(self.failures),
            "revocation": [r.to_json() for r in self.revocation],
        }


@dataclass(frozen=True, slots=True)
class GpuVerdict:
    """The outcome of verifying one GPU's evidence.

    ``accept`` is True only when ``failures`` is empty. ``code`` is the first failure in
    :data:`FAILURE_ORDER` and ``reason`` says it in words; ``failures`` holds every check that failed.
    The other fields say what was checked: the report's architecture and versions, the device chain's
    identity, each RIM's identity, and which RIM indices mismatched (``measurements_checked`` is False when
    no RIM was given, so nothing was compared). ``revocation`` holds what OCSP said of each device certificate
    it was asked about (empty when no response was given and none was required).
    """

    accept: bool
    code: str | None
    reason: str | None
    failures: tuple[str, ...]
    architecture: str | None
    driver_version: str | None
    vbios_version: str | None
    ueid: str
    hwmodel: str
    fwid: str | None
    device_chain: tuple[str, ...]
    driver_rim_id: str | None
    vbios_rim_id: str | None
    rims: tuple[RimCheck, ...] = ()
    measurements_checked: bool = False
    mismatched_indices: dict[str, tuple[int, ...]] = field(default_factory=dict)
    revocation: tuple[RevocationCheck, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "accept": self.accept,
            "code": self.code,
            "reason": self.reason,
            "failures": list(self.failures),
            "architecture": self.architecture,
            "driver_version": self.driver_version,
            "vbios_version": self.vbios_version,
            "ueid": self.ueid,
            "hwmodel": self.hwmodel,
            "fwid": self.fwid,
            "device_chain": list(self.device_chain),
            "driver_rim_id": self.driver_rim_id,
            "vbios_rim_id": self.vbios_rim_id,
            "rims": [r.to_json() for r in self.rims],
            "measurements_checked": self.measurements_checked,
            "mismatched_indices": {k: list(v) for k, v in self.mismatched_indices.items()},
            "revocation": [r.to_json() for r in self.revocation],
        }


def repeated_device(verdicts: Sequence[GpuVerdict]) -> tuple[int, int] | None:
    """The positions ``(first, again)`` of the first GPU that appears twice in one collection (the same UEID,
    whatever its reports), or None when every GPU is another device. An entry saying two GPUs did the work
    when one did overstates its hardware, though each report verifies on its own."""
    seen: dict[str, int] = {}
    for n, verdict in enumerate(verdicts):
        if verdict.ueid in seen:
            return seen[verdict.ueid], n
        seen[verdict.ueid] = n
    return None
