"""The ``tee`` record of an attested entry: what the leaf commits to about the TDX attestation it was admitted
with, as typed values, and the attestation those values are made from.

An entry is attested by a quote of its own (:class:`OwnQuote`: the quote's identity, its REPORTDATA and the
accepting verdict) or inherits the attestation of an earlier entry that attested its signer's key
(:class:`InheritedAttestation`: the cited entry and the verdict of the cited quote re-verified when this entry
was admitted). :class:`Attestation` is what the log's gate (or a monitor's replay) established;
:meth:`TeeRecord.to_json` is the exact JSON the leaf holds, and :meth:`TeeRecord.from_json` reads it back.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from atlas_log._encoding import hexdecode
from atlas_log.errors import FormatError
from atlas_log.tdx.binding import GPU_TAG, KEY_TAG, PAYLOAD_TAG

if TYPE_CHECKING:
    from atlas_log.gpu.verdict import GpuVerdict
    from atlas_log.submission import TeeRequest
    from atlas_log.tdx.quote import Quote
    from atlas_log.tdx.verdict import Verdict

__all__ = [
    "TEE_TYPE",
    "Attestation",
    "GpuRecord",
    "InheritedAttestation",
    "OwnQuote",
    "TeeRecord",
    "VerdictRecord",
]

TEE_TYPE = "intel-tdx"

_MAX_INDEX = (1 << 53) - 1


def _str(obj: dict[str, Any], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise FormatError(f"tee.{key} must be a string")
    return value


def _opt_str(obj: dict[str, Any], key: str) -> str | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise FormatError(f"tee.{key} must be a string or null")
    return value


def _opt_int(obj: dict[str, Any], key: str) -> int | None:
    value = obj.get(key)
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
        raise FormatError(f"tee.{key} must be an integer or null")
    return value


def _strings(obj: dict[str, Any], key: str) -> tuple[str, ...]:
    value = obj.get(key)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise FormatError(f"tee.{key} must be a list of strings")
    return tuple(value)


@dataclass(frozen=True, slots=True)
class VerdictRecord:
    """An accepting verdict as an entry records it: the TD's measurements, the TCB outcome, and the exact
    collateral used (the digest of each part, and of the whole set under ``set``)."""

    tcb_status: str | None
    advisory_ids: tuple[str, ...]
    fmspc: str | None
    tcb_evaluation_data_number: int | None
    mr_td: str
    rtmr: tuple[str, ...]
    mr_config_id: str
    mr_owner: str
    td_attributes: str
    xfam: str
    collateral: tuple[tuple[str, str], ...]  # (part, SHA-256 hex), in the verdict's order
    collateral_set: str
    collateral_expiry: int | None

    MEMBERS = (
        *("tcbStatus", "advisoryIds", "fmspc", "tcbEvaluationDataNumber", "mrTd", "rtmr", "mrConfigId", "mrOwner"),
        *("tdAttributes", "xfam", "collateral", "collateralExpiry"),
    )

    @classmethod
    def of(cls, verdict: Verdict, collateral_set: str) -> VerdictRecord:
        """The record of an accepting ``verdict`` reached with the collateral set whose digest is
        ``collateral_set``; raises :class:`ValueError` for a verdict without a TD report (a rejection)."""
        td = verdict.td
        if td is None:
            raise ValueError("the verdict reports no TD")
        return cls(
            tcb_status=verdict.tcb_status,
            advisory_ids=tuple(verdict.advisory_ids),
            fmspc=verdict.fmspc,
            tcb_evaluation_data_number=verdict.tcb_evaluation_data_number,
            mr_td=td.mr_td.hex(),
            rtmr=tuple(r.hex() for r in td.rtmr),
            mr_config_id=td.mr_config_id.hex(),
            mr_owner=td.mr_owner.hex(),
            td_attributes=td.td_attributes.hex(),
            xfam=td.xfam.hex(),
            collateral=tuple((k, v) for k, v in verdict.collateral_digests.items() if k != "set"),
            collateral_set=collateral_set,
            collateral_expiry=verdict.collateral_expiry,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "tcbStatus": self.tcb_status,
            "advisoryIds": list(self.advisory_ids),
            "fmspc": self.fmspc,
            "tcbEvaluationDataNumber": self.tcb_evaluation_data_number,
            "mrTd": self.mr_td,
            "rtmr": list(self.rtmr),
            "mrConfigId": self.mr_config_id,
            "mrOwner": self.mr_owner,
            "tdAttributes": self.td_attributes,
            "xfam": self.xfam,
            "collateral": {**dict(self.collateral), "set": self.collateral_set},
            "collateralExpiry": self.collateral_expiry,
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> VerdictRecord:
        """The verdict members of a ``tee`` record; raises :class:`FormatError` when one is missing or mistyped."""
        coll = obj.get("collateral")
        if not isinstance(coll, dict) or not all(isinstance(v, str) for v in coll.values()):
            raise FormatError("tee.collateral must map collateral parts to digests")
        return cls(
            tcb_status=_opt_str(obj, "tcbStatus"),
            advisory_ids=_strings(obj, "advisoryIds"),
            fmspc=_opt_str(obj, "fmspc"),
            tcb_evaluation_data_number=_opt_int(obj, "tcbEvaluationDataNumber"),
            mr_td=_str(obj, "mrTd"),
            rtmr=_strings(obj, "rtmr"),
            mr_config_id=_str(obj, "mrConfigId"),
            mr_owner=_str(obj, "mrOwner"),
            td_attributes=_str(obj, "tdAttributes"),
            xfam=_str(obj, "xfam"),
            collateral=tuple((k, v) for k, v in coll.items() if k != "set"),
            collateral_set=_str(coll, "set"),
            collateral_expiry=_opt_int(obj, "collateralExpiry"),
        )


@functools.lru_cache(maxsize=64)  # the same few RIMs appraise every entry of a fleet
def _sha256_hex(document: bytes) -> str:
    return hashlib.sha256(document).hexdigest()


@dataclass(frozen=True, slots=True)
class GpuRecord:
    """One GPU's accepting verdict as a composite entry records it: what the GPU is (architecture, device
    identity, driver and VBIOS versions), which report (``evidenceSha256``) and which RIMs (kind, id, version,
    signer, SHA-256 of the document the log stores) it was appraised with, whether its measurements were
    compared with them (``matched``) or not (``not-checked``: no RIM was given and the policy allowed that),
    and the OCSP responses that spoke for its certificates (``revocation``: which chain — ``device``,
    ``driver`` or ``vbios`` —, the certificate's serial, the status, SHA-256 of the response the log stores)."""

    architecture: str | None
    driver_version: str | None
    vbios_version: str | None
    ueid: str
    hwmodel: str
    fwid: str | None
    evidence_sha256: str
    device_chain: tuple[str, ...]
    rims: tuple[tuple[str, str, str, str], ...]  # (kind, RIM service id, version, SHA-256 of the document)
    measurements: str
    revocation: tuple[tuple[str, str, str, str], ...] = ()  # (chain, serial, status, SHA-256 of the response)

    MEMBERS = frozenset(
        {"architecture", "driverVersion", "vbiosVersion", "ueid", "hwmodel", "fwid", "evidenceSha256"}
        | {"deviceChain", "rims", "measurements", "revocation"}
    )

    @classmethod
    def of(cls, verdict: GpuVerdict, report: bytes, rims: dict[str, bytes]) -> GpuRecord:
        """The record of an accepting ``verdict`` of ``report``, appraised with ``rims`` (kind → document);
        raises :class:`ValueError` for a rejection."""
        if not verdict.accept:
            raise ValueError("only an accepted GPU is recorded")
        return cls(
            architecture=verdict.architecture,
            driver_version=verdict.driver_version,
            vbios_version=verdict.vbios_version,
            ueid=verdict.ueid,
            hwmodel=verdict.hwmodel,
            fwid=verdict.fwid,
            evidence_sha256=hashlib.sha256(report).hexdigest(),
            device_chain=verdict.device_chain,
            rims=tuple((r.kind, r.expected_id or r.tag_id, r.version, _sha256_hex(rims[r.kind])) for r in verdict.rims),
            measurements="matched" if verdict.measurements_checked else "not-checked",
            revocation=tuple(
                (chain, c.serial, c.status, c.response_sha256)
                for chain, checks in (("device", verdict.revocation), *((r.kind, r.revocation) for r in verdict.rims))
                for c in checks
                if c.response_sha256 is not None
            ),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "architecture": self.architecture,
            "driverVersion": self.driver_version,
            "vbiosVersion": self.vbios_version,
            "ueid": self.ueid,
            "hwmodel": self.hwmodel,
            "fwid": self.fwid,
            "evidenceSha256": self.evidence_sha256,
            "deviceChain": list(self.device_chain),
            "rims": [{"kind": k, "id": i, "version": v, "sha256": d} for k, i, v, d in self.rims],
            "measurements": self.measurements,
            "revocation": [{"chain": c, "serial": n, "status": t, "sha256": d} for c, n, t, d in self.revocation],
        }

    @classmethod
    def from_json(cls, obj: Any) -> GpuRecord:
        if not isinstance(obj, dict) or set(obj) != cls.MEMBERS:
            raise FormatError(f"each of tee.gpus must have exactly the members {sorted(cls.MEMBERS)}")
        rims = obj["rims"]
        rim_members = {"kind", "id", "version", "sha256"}
        if not isinstance(rims, list) or not all(
            isinstance(r, dict) and set(r) == rim_members and all(isinstance(v, str) for v in r.values()) for r in rims
        ):
            raise FormatError("tee.gpus[].rims must list {kind, id, version, sha256} strings")
        revocation = obj["revocation"]
        if not isinstance(revocation, list) or not all(
            isinstance(r, dict)
            and set(r) == {"chain", "serial", "status", "sha256"}
            and all(isinstance(v, str) for v in r.values())
            for r in revocation
        ):
            raise FormatError("tee.gpus[].revocation must list {chain, serial, status, sha256} strings")
        measurements = _str(obj, "measurements")
        if measurements not in ("matched", "not-checked"):
            raise FormatError("tee.gpus[].measurements must be 'matched' or 'not-checked'")
        return cls(
            architecture=_opt_str(obj, "architecture"),
            driver_version=_opt_str(obj, "driverVersion"),
            vbios_version=_opt_str(obj, "vbiosVersion"),
            ueid=_str(obj, "ueid"),
            hwmodel=_str(obj, "hwmodel"),
            fwid=_opt_str(obj, "fwid"),
            evidence_sha256=_str(obj, "evidenceSha256"),
            device_chain=_strings(obj, "deviceChain"),
            rims=tuple((r["kind"], r["id"], r["version"], r["sha256"]) for r in rims),
            measurements=measurements,
            revocation=tuple((r["chain"], r["serial"], r["status"], r["sha256"]) for r in revocation),
        )


@dataclass(frozen=True, slots=True)
class OwnQuote:
    """An entry's own quote: its identity (``quoteSha256``), its REPORTDATA (hex) and the accepting verdict."""

    quote_sha256: str
    report_data: str
    verdict: VerdictRecord

    @classmethod
    def of(cls, quote: Quote, verdict: Verdict, collateral_set: str) -> OwnQuote:
        """``quoteSha256`` hashes the quote without its trailing zero padding (:attr:`Quote.raw`), so padding
        cannot make one quote look like another."""
        record = VerdictRecord.of(verdict, collateral_set)
        assert verdict.td is not None  # VerdictRecord.of refuses a verdict without a TD report
        return cls(hashlib.sha256(quote.raw).hexdigest(), verdict.td.report_data.hex(), record)


@dataclass(frozen=True, slots=True)
class InheritedAttestation:
    """The attestation of an earlier entry (``entry``) that attested the signer's key, with the verdict of its
    quote re-verified when the citing entry was admitted (collateral in force then, the log's policy then),
    not a copy of the cited entry's verdict. It records no ``quoteSha256``: the entry carries no quote."""

    entry: int
    verdict: VerdictRecord


@dataclass(frozen=True, slots=True)
class Attestation:
    """What admission established about an attested submission: its checked ``tee`` request, the evidence
    (own quote or inherited), whether the log runs simulated TDX, and the size of the checkpoint whose root
    the request's nonce is (None for the zero nonce)."""

    request: TeeRequest
    evidence: OwnQuote | InheritedAttestation
    simulated: bool
    nonce_checkpoint_size: int | None = None
    gpus: tuple[GpuRecord, ...] = ()


@dataclass(frozen=True, slots=True)
class TeeRecord:
    """An attested entry's ``tee``: which signature's key (``spki_sha256``) the attestation binds, how
    (``binding``), with which nonce, in which TDX mode, and its evidence."""

    binding: str
    signature_index: int
    spki_sha256: str
    nonce: bytes
    simulated: bool
    evidence: OwnQuote | InheritedAttestation
    nonce_checkpoint_size: int | None = None
    gpu_evidence_sha256: str | None = None  # composite binding: the GPU evidence collection the quote commits to
    gpus: tuple[GpuRecord, ...] = ()

    def attests_key(self, fingerprint: str) -> bool:
        """Whether this is a quote-attested key binding for the key ``fingerprint`` (so later entries signed by
        that key may cite it instead of carrying a quote)."""
        return self.binding == KEY_TAG and isinstance(self.evidence, OwnQuote) and self.spki_sha256 == fingerprint

    def to_json(self) -> dict[str, Any]:
        """The record as the leaf holds it."""
        out: dict[str, Any] = {
            "type": TEE_TYPE,
            "binding": self.binding,
            "signatureIndex": self.signature_index,
            "spkiSha256": self.spki_sha256,
            "nonce": self.nonce.hex(),
            "simulated": self.simulated,
        }
        if self.nonce_checkpoint_size is not None:
            out["nonceCheckpointSize"] = self.nonce_checkpoint_size
        evidence = self.evidence
        if isinstance(evidence, OwnQuote):
            out["quoteSha256"] = evidence.quote_sha256
            out["reportData"] = evidence.report_data
        out.update(evidence.verdict.to_json())
        if isinstance(evidence, InheritedAttestation):
            out["keyAttestationEntry"] = evidence.entry
        if self.binding == GPU_TAG:
            out["gpuEvidenceSha256"] = self.gpu_evidence_sha256
            out["gpus"] = [g.to_json() for g in self.gpus]
        return out

    @classmethod
    def from_json(cls, obj: Any) -> TeeRecord:
        """Read a leaf's ``tee`` back; raises :class:`FormatError` for anything :meth:`to_json` does not make."""
        if not isinstance(obj, dict):
            raise FormatError("tee must be an object")
        own = "quoteSha256" in obj
        members = {"type", "binding", "signatureIndex", "spkiSha256", "nonce", "simulated", *VerdictRecord.MEMBERS}
        members |= {"nonceCheckpointSize"} | ({"quoteSha256", "reportData"} if own else {"keyAttestationEntry"})
        binding = obj.get("binding")
        if binding == GPU_TAG:
            members |= {"gpuEvidenceSha256", "gpus"}
        if obj.get("type") != TEE_TYPE or not set(obj) <= members:
            raise FormatError(f"tee must be a {TEE_TYPE!r} record with members from {sorted(members)}")
        binding = _str(obj, "binding")
        if binding not in (PAYLOAD_TAG, KEY_TAG, GPU_TAG):
            raise FormatError(f"tee.binding must be {PAYLOAD_TAG!r}, {KEY_TAG!r} or {GPU_TAG!r}")
        gpus: tuple[GpuRecord, ...] = ()
        gpu_digest = None
        if binding == GPU_TAG:
            if not own or not isinstance(obj.get("gpus"), list) or not obj["gpus"]:
                raise FormatError("a composite tee carries its own quote and lists its GPUs")
            gpus = tuple(GpuRecord.from_json(g) for g in obj["gpus"])
            gpu_digest = _str(obj, "gpuEvidenceSha256")
        simulated = obj.get("simulated")
        if not isinstance(simulated, bool):
            raise FormatError("tee.simulated must be a boolean")
        index, size = _opt_int(obj, "signatureIndex"), _opt_int(obj, "nonceCheckpointSize")
        if index is None or index < 0:
            raise FormatError("tee.signatureIndex must be a non-negative integer")
        verdict = VerdictRecord.from_json(obj)
        evidence: OwnQuote | InheritedAttestation
        if own:
            evidence = OwnQuote(_str(obj, "quoteSha256"), _str(obj, "reportData"), verdict)
        else:
            entry = _opt_int(obj, "keyAttestationEntry")
            if entry is None or not 0 <= entry <= _MAX_INDEX:
                raise FormatError("a tee without quoteSha256 must name its keyAttestationEntry (a log index)")
            evidence = InheritedAttestation(entry, verdict)
        return cls(
            binding=binding,
            signature_index=index,
            spki_sha256=_str(obj, "spkiSha256"),
            nonce=hexdecode(_str(obj, "nonce"), "tee.nonce", 32),
            simulated=simulated,
            evidence=evidence,
            nonce_checkpoint_size=size,
            gpu_evidence_sha256=gpu_digest,
            gpus=gpus,
        )
