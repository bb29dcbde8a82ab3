"""The components a request handler uses, created by the app's lifespan."""

from __future__ import annotations

from dataclasses import dataclass

from atlas_log.note import Verifier
from atlas_log_server.access import AccessControl
from atlas_log_server.admission import Admission
from atlas_log_server.attest.setup import Attestation
from atlas_log_server.config import Settings
from atlas_log_server.db.disclosures import DisclosureRepository
from atlas_log_server.db.repository import Repository
from atlas_log_server.log.completeness import Completeness
from atlas_log_server.log.proofs import ProofService
from atlas_log_server.log.receipts import Receipts
from atlas_log_server.log.sequencer import Sequencer
from atlas_log_server.metrics import Metrics
from atlas_log_server.vault import Vault


@dataclass
class LogContext:
    settings: Settings
    repo: Repository
    sequencer: Sequencer
    proofs: ProofService
    admission: Admission
    verifier: Verifier
    attestation: Attestation
    metrics: Metrics
    access: AccessControl
    receipts: Receipts
    completeness: Completeness | None  # None: the log keeps no map (map_interval_s = 0)
    vault: Vault
    disclosures: DisclosureRepository
