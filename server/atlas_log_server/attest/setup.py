"""Builds the TDX admission gate (collateral store, PCS client, policy, roots) from the settings."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

from atlas_log.tdx.pcs import INTEL_PCS_URL, INTEL_ROOT_CRL_URL, PcsClient
from atlas_log.tdx.pki import INTEL_ROOT_SPKI_SHA256
from atlas_log.tdx.policy import Policy
from atlas_log.tdx.verification_cache import VerificationCache
from atlas_log_server.attest.gate import TdxGate
from atlas_log_server.attest.store import CollateralStore
from atlas_log_server.config import Settings
from atlas_log_server.db.collateral import CollateralRepository
from atlas_log_server.db.repository import Repository
from atlas_log_server.metrics import Metrics


@dataclass
class Attestation:
    gate: TdxGate
    store: CollateralStore
    http: httpx.AsyncClient
    summary: dict[str, Any]


def build_attestation(
    settings: Settings, collateral: CollateralRepository, repo: Repository, metrics: Metrics
) -> Attestation:
    policy = (
        Policy.from_json(json.loads(settings.tdx_policy_file.read_text())) if settings.tdx_policy_file else Policy()
    )
    if settings.tdx_mode == "simulated":
        # Development only: the simulator loads when it is asked for, never on the production path.
        from atlas_log_server.attest.dev import load_or_create_platform, start_simulated_pcs

        platform = load_or_create_platform(settings.platform_dir)
        roots = [platform.root_fingerprint, *settings.tdx_extra_roots]
        pcs_url = settings.pcs_url or start_simulated_pcs(platform)
    else:
        roots = [INTEL_ROOT_SPKI_SHA256, *settings.tdx_extra_roots]
        pcs_url = settings.pcs_url or INTEL_PCS_URL
    root_crl_url = settings.pcs_root_crl_url or (
        INTEL_ROOT_CRL_URL
        if pcs_url.rstrip("/") == INTEL_PCS_URL
        else pcs_url.rstrip("/") + "/sgx/certification/v4/rootcacrl"
    )
    http = httpx.AsyncClient(timeout=10)
    store = CollateralStore(
        collateral, PcsClient(http, pcs_url, root_crl_url), roots, settings.collateral_refresh_margin_s, metrics=metrics
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
    }
    if settings.tdx_mode == "simulated":
        summary["warning"] = "SIMULATED TDX: quotes come from a simulated platform and prove nothing about TEEs"
        # What an auditor passes (--tdx-root) to re-verify this development log's quotes.
        summary["simulatedRoot"] = roots[0] if roots else None
    return Attestation(gate, store, http, summary)
