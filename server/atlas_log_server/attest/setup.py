"""Builds the TDX admission gate (collateral store, PCS client, policy, roots, and the GPU appraisal with its
RIM store) from the settings."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import httpx
from cryptography import x509

from atlas_log.gpu import CORIM_ROOT_SHA256, DEVICE_IDENTITY_ROOT_SHA256
from atlas_log.gpu.roots import certificate_sha256
from atlas_log.tdx.pcs import INTEL_PCS_URL, INTEL_ROOT_CRL_URL, PcsClient
from atlas_log.tdx.pki import INTEL_ROOT_SPKI_SHA256
from atlas_log.tdx.policy import Policy
from atlas_log.tdx.verification_cache import VerificationCache
from atlas_log_server.attest.gate import TdxGate
from atlas_log_server.attest.gpu import GpuAdmissionPolicy, GpuAppraiser
from atlas_log_server.attest.ocsp import NVIDIA_OCSP_URL, OcspStore
from atlas_log_server.attest.rims import NVIDIA_RIM_SERVICE_URL, RimStore
from atlas_log_server.attest.store import CollateralStore
from atlas_log_server.config import Settings
from atlas_log_server.db.collateral import CollateralRepository
from atlas_log_server.db.ocsp import OcspRepository
from atlas_log_server.db.repository import Repository
from atlas_log_server.db.rims import RimRepository
from atlas_log_server.metrics import Metrics


@dataclass
class Attestation:
    gate: TdxGate
    store: CollateralStore
    rims: RimStore
    ocsp: OcspStore
    http: httpx.AsyncClient
    summary: dict[str, Any]

    async def refresh_loop(self, interval_s: float = 60) -> None:
        """Refresh collateral, RIMs and OCSP responses near their expiry every ``interval_s`` seconds until
        cancelled."""
        while True:
            await asyncio.sleep(interval_s)
            await self.store.refresh_once()
            await self.rims.refresh_once()
            await self.ocsp.refresh_once()


def build_attestation(
    settings: Settings, collateral: CollateralRepository, repo: Repository, metrics: Metrics
) -> Attestation:
    policy = (
        Policy.from_json(json.loads(settings.tdx_policy_file.read_text())) if settings.tdx_policy_file else Policy()
    )
    if settings.tdx_mode == "simulated":
        # Development only: the simulator loads when it is asked for, never on the production path.
        from atlas_log_server.attest.dev import (
            load_or_create_gpu,
            load_or_create_platform,
            start_simulated_ocsp_service,
            start_simulated_pcs,
            start_simulated_rim_service,
        )

        platform = load_or_create_platform(settings.platform_dir)
        roots = [platform.root_fingerprint, *settings.tdx_extra_roots]
        pcs_url = settings.pcs_url or start_simulated_pcs(platform)
        gpu = load_or_create_gpu(settings.gpu_dir)
        device_root: x509.Certificate | None = gpu.device_root
        rim_root: x509.Certificate | None = gpu.rim_root
        rim_url = settings.gpu_rim_service_url or start_simulated_rim_service(gpu)
        ocsp_url = settings.gpu_ocsp_url or start_simulated_ocsp_service(gpu)
    else:
        roots = [INTEL_ROOT_SPKI_SHA256, *settings.tdx_extra_roots]
        pcs_url = settings.pcs_url or INTEL_PCS_URL
        device_root = rim_root = None
        rim_url = settings.gpu_rim_service_url or NVIDIA_RIM_SERVICE_URL
        ocsp_url = settings.gpu_ocsp_url or NVIDIA_OCSP_URL
    root_crl_url = settings.pcs_root_crl_url or (
        INTEL_ROOT_CRL_URL
        if pcs_url.rstrip("/") == INTEL_PCS_URL
        else pcs_url.rstrip("/") + "/sgx/certification/v4/rootcacrl"
    )
    http = httpx.AsyncClient(timeout=10)
    store = CollateralStore(
        collateral, PcsClient(http, pcs_url, root_crl_url), roots, settings.collateral_refresh_margin_s, metrics=metrics
    )
    rims = RimStore(RimRepository(collateral.pool), http, rim_url, rim_root, settings.collateral_refresh_margin_s)
    # The store serves the responses entries recorded even when the service is no longer asked ("off").
    ocsp = OcspStore(OcspRepository(collateral.pool), http, ocsp_url, settings.collateral_refresh_margin_s)
    asked = None if ocsp_url == "off" else ocsp
    gpu_policy = GpuAdmissionPolicy(
        required=settings.gpu_required,
        require_rims=settings.gpu_require_rims,
        min_driver_version=settings.gpu_min_driver_version,
        require_ocsp=settings.gpu_require_ocsp,
    )
    gate = TdxGate(
        store,
        repo,
        VerificationCache(),
        policy,
        roots,
        simulated=settings.tdx_mode == "simulated",
        allow_unattested=settings.allow_unattested,
        nonce_max_age_s=settings.nonce_max_age_s,
        require_fresh_nonce=settings.require_fresh_nonce,
        key_attestation_max_age_s=settings.key_attestation_max_age_s,
        gpu=GpuAppraiser(rims, gpu_policy, ocsp=asked, device_root=device_root, rim_root=rim_root),
    )
    summary: dict[str, Any] = {
        "mode": settings.tdx_mode,
        "simulated": settings.tdx_mode == "simulated",
        "trustedRoots": roots,
        "pcsUrl": pcs_url,
        "allowUnattested": settings.allow_unattested,
        "requireFreshNonce": settings.require_fresh_nonce,
        "keyAttestationMaxAgeS": settings.key_attestation_max_age_s,
        "policy": {
            "allowedStatuses": sorted(policy.allowed_statuses),
            "deniedAdvisories": sorted(policy.denied_advisories),
            "mrTdAllowList": sorted(policy.mr_td) if policy.mr_td is not None else None,
            "minTcbEvaluationDataNumber": policy.min_tcb_evaluation_data_number,
            "requireSeptVeDisable": policy.require_sept_ve_disable,
            "allowMigratable": policy.allow_migratable,
            "allowPerfmon": policy.allow_perfmon,
            "allowReservedTdAttributes": policy.allow_reserved_td_attributes,
        },
        "gpu": {
            "required": gpu_policy.required,
            "requireRims": gpu_policy.require_rims,
            "minDriverVersion": gpu_policy.min_driver_version,
            "rimServiceUrl": rim_url,
            "ocspUrl": None if asked is None else ocsp_url,
            "requireOcsp": gpu_policy.require_ocsp,
            # SHA-256 of the DER root certificates GPU device chains and RIM signing chains must end in.
            "deviceRoot": DEVICE_IDENTITY_ROOT_SHA256 if device_root is None else certificate_sha256(device_root),
            "rimRoot": CORIM_ROOT_SHA256 if rim_root is None else certificate_sha256(rim_root),
        },
    }
    if settings.tdx_mode == "simulated":
        summary["warning"] = "SIMULATED TDX: quotes come from a simulated platform and prove nothing about TEEs"
        # What an auditor passes (--tdx-root) to re-verify this development log's quotes.
        summary["simulatedRoot"] = roots[0] if roots else None
    return Attestation(gate, store, rims, ocsp, http, summary)
