"""NVIDIA GPU (Hopper, Blackwell) confidential-computing attestation: SPDM 1.1 reports, device certificate
chains, reference integrity manifests (RIMs), and a verdict.

>>> # verdicts = verify_gpu_evidence_path(Path("evidence.json"), nonce=my_nonce, at=int(time.time()))
>>> # verdict = verify_gpu_evidence(report, chain_pem, nonce=my_nonce, at=now, driver_rim=rim_xml)
"""

from atlas_log.gpu.evidence import GpuEvidence, load_gpu_evidence, load_rims, verify_gpu_evidence_path
from atlas_log.gpu.policy import Policy
from atlas_log.gpu.report import AttestationReport, parse_report
from atlas_log.gpu.rim import Rim, parse_rim
from atlas_log.gpu.roots import CORIM_ROOT_SHA256, DEVICE_IDENTITY_ROOT_SHA256
from atlas_log.gpu.verdict import FAILURE_ORDER, GpuVerdict, RimCheck
from atlas_log.gpu.verification import verify_gpu_evidence, verify_rim

__all__ = [
    "CORIM_ROOT_SHA256",
    "DEVICE_IDENTITY_ROOT_SHA256",
    "FAILURE_ORDER",
    "AttestationReport",
    "GpuEvidence",
    "GpuVerdict",
    "Policy",
    "Rim",
    "RimCheck",
    "load_gpu_evidence",
    "load_rims",
    "parse_report",
    "parse_rim",
    "verify_gpu_evidence",
    "verify_gpu_evidence_path",
    "verify_rim",
]
