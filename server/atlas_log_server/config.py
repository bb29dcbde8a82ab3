"""The server's one settings object: read from ``ATLAS_*`` environment variables, validated at startup."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from atlas_log._encoding import JSON_LIMITS
from atlas_log.bundle import CODE_SIGNING

DEFAULT_ORIGIN = "atlas-log.localhost/dev"
DEFAULT_BATCH_MAX_SIZE = 512
DEFAULT_BATCH_MAX_AGE_MS = 5
DEFAULT_MAX_BODY_BYTES = JSON_LIMITS.max_bytes
DEFAULT_POOL_SIZE = 10
DEFAULT_KEY_ATTESTATION_MAX_AGE_S = 86_400  # a key attested by a quote is trusted for a pipeline run, not forever
DEFAULT_SIGNER_TIMEOUT_S = 10.0  # an external signer that has not answered by then is restarted
DEFAULT_TILE_CACHE_TILES = 16384  # tiles kept in memory per process (16 KiB each with inner nodes: 256 MiB at most)


class Settings(BaseSettings):
    """Every tunable of the server. Build one in ``main``/tests and pass it to ``create_app``."""

    model_config = SettingsConfigDict(env_prefix="ATLAS_", extra="ignore", frozen=True)

    database_url: str | None = Field(
        default=None, description="PostgreSQL URL; unset = embedded PostgreSQL in data_dir/pgdata"
    )
    read_database_urls: list[str] = Field(
        default_factory=list,
        description="PostgreSQL URLs of read replicas (streaming standbys of the log's database), a JSON list: "
        "proof, tile, entry, history, lineage, search and evidence reads go to them, writes to the primary",
    )
    data_dir: Path = Field(default=Path(".atlas-log"), description="holds the embedded database and the log key")
    key_file: Path | None = Field(default=None, description="checkpoint signing key; default data_dir/log.key")
    origin: str = Field(default=DEFAULT_ORIGIN, description="the log's origin line and key name")
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    batch_max_size: int = Field(default=DEFAULT_BATCH_MAX_SIZE, ge=1, le=10_000)
    batch_max_age_ms: float = Field(default=DEFAULT_BATCH_MAX_AGE_MS, ge=0, le=10_000)
    # A body the log admits must parse within the limits every monitor replays with.
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY_BYTES, ge=1024, le=JSON_LIMITS.max_bytes)
    body_timeout_s: float = Field(default=30.0, gt=0, le=3600, description="time to receive a request body")
    pool_size: int = Field(default=DEFAULT_POOL_SIZE, ge=2, le=200)
    tile_cache_tiles: int = Field(default=DEFAULT_TILE_CACHE_TILES, ge=0)
    max_pending: int = Field(default=10_000, ge=1, description="admitted entries waiting for a batch before 503")
    migrate_on_start: bool = Field(default=True, description="apply Alembic migrations when the server starts")
    tdx_mode: Literal["simulated", "intel"] = Field(
        default="simulated",
        description="simulated: a local simulated TDX platform and PCS (development); "
        "intel: Intel PCS and the pinned Intel SGX Root CA (production)",
    )
    allow_unattested: bool = Field(default=False, description="admit entries without a TDX quote")
    pcs_url: str | None = Field(
        default=None, description="PCS or PCCS base URL (default: Intel PCS, or the local stand-in in simulated mode)"
    )
    pcs_root_crl_url: str | None = Field(
        default=None,
        description="root CA CRL URL (default: Intel's, or <pcs_url>/sgx/certification/v4/rootcacrl for a PCCS)",
    )
    tdx_policy_file: Path | None = Field(default=None, description="JSON TDX policy (default: UpToDate only)")
    tdx_extra_roots: list[str] = Field(default_factory=list, description="more trusted root SPKI SHA-256s")
    nonce_max_age_s: int = Field(default=600, ge=1, description="oldest checkpoint a quote nonce may name")
    require_fresh_nonce: bool = Field(default=False, description="quotes must name a recent checkpoint root")
    key_attestation_max_age_s: int = Field(
        default=DEFAULT_KEY_ATTESTATION_MAX_AGE_S,
        ge=1,
        description="oldest key-attestation entry (by integration time) a keyAttestationEntry may cite",
    )
    collateral_refresh_margin_s: int = Field(
        default=3 * 86_400, ge=60, description="refetch collateral this long before it expires"
    )
    gpu_required: bool = Field(
        default=False, description="attested entries must carry their GPUs' evidence (composite binding)"
    )
    gpu_require_rims: bool = Field(
        default=True,
        description="each GPU's driver and VBIOS RIMs must be found and every measurement match them",
    )
    gpu_min_driver_version: str | None = Field(
        default=None, pattern=r"^\d+(\.\d+)*$", description="oldest GPU driver version admitted, e.g. 570.124.06"
    )
    gpu_rim_service_url: str | None = Field(
        default=None,
        description="RIM service base URL (default: NVIDIA's, or the local stand-in in simulated mode)",
    )
    gpu_ocsp_url: str | None = Field(
        default=None,
        description="OCSP service URL for GPU device and RIM certificates (default: NVIDIA's, or the local "
        "stand-in in simulated mode); 'off' asks none",
    )
    gpu_require_ocsp: bool = Field(
        default=False,
        description="each GPU's NVIDIA-issued device and RIM certificates need a current OCSP response saying good",
    )
    x509_roots_file: Path | None = Field(default=None, description="PEM roots for certificate-signed entries")
    x509_extended_key_usage: str = Field(
        default=CODE_SIGNING,
        pattern=r"^[0-2](\.(0|[1-9][0-9]*))+$",
        description="extended key usage (dotted OID) a signing certificate must carry; default code signing",
    )
    witnesses: list[str] = Field(default_factory=list, description='witnesses as JSON ["<url> <vkey>", ...]')
    witness_quorum: int = Field(default=0, ge=0, description="cosignatures a checkpoint needs to be published")
    checkpoint_interval_s: float = Field(default=1.0, gt=0, le=3600, description="publishing interval")
    map_interval_s: float = Field(
        default=1.0,
        ge=0,
        le=3600,
        description="how often the verifiable map commits new leaves (0: no map, no completeness proofs)",
    )
    simulated_platform_dir: Path | None = Field(default=None, description="default data_dir/simulated-tdx")
    simulated_gpu_dir: Path | None = Field(default=None, description="default data_dir/simulated-gpu")
    disclosure_key_dir: Path | None = Field(
        default=None,
        description="holds the key-encryption key of confidential entries' disclosures and the tombstones of "
        "erased ones; keep it out of database backups (default data_dir/disclosures)",
    )
    disclosure_kek_command: str | None = Field(
        default=None,
        description="an external key-encryption service (HSM/KMS adapter) wrapping the disclosures' data keys "
        "instead of the key file: a command answering 'wrap CONTEXT KEY' and 'unwrap CONTEXT WRAPPED' lines",
    )
    disclosure_kek_timeout_s: float = Field(
        default=5.0, gt=0, le=25, description="longest wait for one answer of the external key-encryption command"
    )
    signer_command: str | None = Field(
        default=None, description="external signer command (one base64 message per line in, signature out)"
    )
    signer_vkey: str | None = Field(default=None, description="verifier key of the external signer's key")
    signer_timeout_s: float = Field(
        default=DEFAULT_SIGNER_TIMEOUT_S,
        gt=0,
        le=25,  # below the connections' 30 s lock_timeout: batches of other processes queue behind the signature
        description="longest wait for one external signature (the tree-state lock is held meanwhile); then 503",
    )
    require_tokens: bool = Field(default=False, description="submissions need a tenant's bearer token")
    admin_token_sha256: str | None = Field(
        default=None, description="SHA-256 (hex) of the admin token; admin operations are disabled when unset"
    )
    log_format: Literal["auto", "json", "text"] = Field(
        default="auto",
        description="log lines as JSON objects or readable text; auto: text on a terminal, JSON otherwise",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="lowest level logged (info includes one access line per request)"
    )

    @field_validator("origin")
    @classmethod
    def _origin_is_a_key_name(cls, v: str) -> str:
        if not re.fullmatch(r"[^\s+]+", v):
            raise ValueError("origin must be non-empty with no spaces or '+' (it is also the key name)")
        return v

    @field_validator("database_url")
    @classmethod
    def _postgres_only(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"postgres(ql)?(\+asyncpg)?://", v):
            raise ValueError("database_url must be a postgresql:// URL")
        return v

    @model_validator(mode="after")
    def _resolve_key_file(self) -> Settings:
        if self.key_file is None:
            object.__setattr__(self, "key_file", self.data_dir / "log.key")
        if self.simulated_platform_dir is None:
            object.__setattr__(self, "simulated_platform_dir", self.data_dir / "simulated-tdx")
        if self.simulated_gpu_dir is None:
            object.__setattr__(self, "simulated_gpu_dir", self.data_dir / "simulated-gpu")
        if self.disclosure_key_dir is None:
            object.__setattr__(self, "disclosure_key_dir", self.data_dir / "disclosures")
        if self.gpu_require_ocsp and self.gpu_ocsp_url == "off":
            raise ValueError("gpu_require_ocsp needs an OCSP service: gpu_ocsp_url is 'off'")
        if self.witness_quorum > len(self.witnesses):
            raise ValueError("witness_quorum is larger than the number of configured witnesses")
        if self.require_fresh_nonce and self.checkpoint_interval_s > self.nonce_max_age_s / 2:
            raise ValueError(
                "with require_fresh_nonce, checkpoint_interval_s must be at most nonce_max_age_s / 2, or an idle "
                "log could not re-publish its checkpoint before every root it offers as a nonce is stale"
            )
        for root in self.tdx_extra_roots:
            if not re.fullmatch(r"[0-9a-f]{64}", root):
                raise ValueError("tdx_extra_roots must be SHA-256 fingerprints in lowercase hex")
        if (self.signer_command is None) != (self.signer_vkey is None):
            raise ValueError("signer_command and signer_vkey go together (an external signer and its key)")
        if self.admin_token_sha256 is not None and not re.fullmatch(r"[0-9a-f]{64}", self.admin_token_sha256):
            raise ValueError("admin_token_sha256 must be the SHA-256 of the admin token in lowercase hex")
        return self

    @property
    def platform_dir(self) -> Path:
        assert self.simulated_platform_dir is not None
        return self.simulated_platform_dir

    @property
    def gpu_dir(self) -> Path:
        assert self.simulated_gpu_dir is not None
        return self.simulated_gpu_dir

    @property
    def signing_key_path(self) -> Path:
        assert self.key_file is not None
        return self.key_file
