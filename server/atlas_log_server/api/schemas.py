"""The API's answers as the OpenAPI document publishes them: one model per answer, the problem+json error, and
the ``responses=`` each route declares.

The models describe; they never filter. Routes keep serialising their own JSON (``response_model=None``), so an
answer's bytes do not depend on these classes; tests validate real answers against the served document, which
keeps the two equal.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from atlas_log_server.api.problems import PROBLEM_JSON
from atlas_log_server.errors import PROBLEM_BASE

B64 = "standard padded base64"
COMPONENTS = "#/components/schemas/"
SUBMISSION = COMPONENTS + "Submission"
"""The request body of POST /api/v1/entries (atlas_log.schema, placed in the document by the app)."""


class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Problem(BaseModel):
    """RFC 9457 problem details."""

    model_config = ConfigDict(extra="allow")
    type: str = Field(description=f"a stable URI naming the problem, under {PROBLEM_BASE}")
    title: str
    status: int = Field(ge=400, le=599)
    detail: str = Field(description="what went wrong, and what to do about it")


class InclusionProofPath(_Answer):
    log_index: int = Field(alias="logIndex", ge=0)
    tree_size: int = Field(alias="treeSize", ge=1)
    hashes: list[str] = Field(description=f"the audit path, leaf to root ({B64})")


class Receipt(_Answer):
    """An entry's receipt: the entry, its inclusion proof and the signed checkpoint it is proved against."""

    entry_id: str = Field(alias="entryId", pattern="^[0-9a-f]{64}$")
    log_index: int = Field(alias="logIndex", ge=0)
    leaf_hash: str = Field(alias="leafHash", description=B64)
    leaf: str = Field(description=f"the entry's leaf: RFC 8785 JSON ({B64})")
    inclusion_proof: InclusionProofPath = Field(alias="inclusionProof")
    checkpoint: str = Field(description="the signed checkpoint (C2SP signed note)")


class Entry(_Answer):
    log_index: int = Field(alias="logIndex", ge=0)
    entry_id: str = Field(alias="entryId", pattern="^[0-9a-f]{64}$")
    leaf_hash: str = Field(alias="leafHash", description=B64)
    leaf: str = Field(description=B64)
    integrated_time: int = Field(alias="integratedTime", description="Unix seconds")
    submission: dict[str, Any] | str = Field(
        description="the submission exactly as admitted (see Submission); as base64 when it no longer parses "
        "within today's JSON limits"
    )


class InclusionProof(_Answer):
    log_index: int = Field(alias="logIndex", ge=0)
    tree_size: int = Field(alias="treeSize", ge=1)
    leaf_hash: str = Field(alias="leafHash", description=B64)
    hashes: list[str] = Field(description=B64)


class ConsistencyProof(_Answer):
    first: int = Field(alias="from", ge=1)
    second: int = Field(alias="to", ge=1)
    hashes: list[str] = Field(description=B64)


class Frozen(_Answer):
    checkpoint: str


class LogInfo(_Answer):
    origin: str
    verifier_key: str = Field(alias="verifierKey", description="the checkpoint verifier key (C2SP vkey)")
    tree_size: int = Field(alias="treeSize", ge=0)
    root_hash: str = Field(alias="rootHash", description=B64)
    attestation: dict[str, Any] = Field(description="the TDX attestation mode, trusted roots and policy")
    frozen: Frozen | None
    witnesses: list[str] = Field(description="the cosigner keys of the witnesses the log sends its checkpoints to")
    witness_quorum: int = Field(alias="witnessQuorum", ge=0, description="cosignatures a published checkpoint has")


class ProvedEntry(_Answer):
    log_index: int = Field(alias="logIndex", ge=0)
    leaf: str = Field(description=B64)
    inclusion_proof: list[str] = Field(alias="inclusionProof", description=f"against the answer's checkpoint ({B64})")


class NamedArtifact(_Answer):
    name: str | None
    version: str | None
    digest: str
    role: str
    ml_role: str | None = Field(
        default=None, alias="mlRole", description="what it is to the step, as the statement annotates it"
    )


class NamedEntry(ProvedEntry):
    artifacts: list[NamedArtifact] = Field(
        description="the artifacts the entry's statement names, with their names and versions (the log's index: "
        "names are not in the leaf)"
    )
    facts: str | None = Field(
        default=None,
        description="for an entry naming an asked artifact only in a role its leaf does not list (a component, "
        f"byproduct, builder dependency or deployment): its fact list, whose SHA-256 the leaf commits to ({B64})",
    )


class HistoryEntry(NamedEntry):
    roles: list[str]
    disclosures_erased: str | None = Field(
        default=None,
        alias="disclosuresErased",
        description="a confidential entry whose hidden values were erased: when (ISO 8601); the entry and its "
        "proofs stay valid",
    )


class MapLeaf(_Answer):
    key: str = Field(pattern="^[0-9a-f]{64}$", description="SHA-256 of the artifact digest's text (hex)")
    newest: int = Field(ge=0, description="the index of the newest entry naming the artifact")
    count: int = Field(ge=1, description="how many entries name it")


class MapProof(_Answer):
    siblings: list[str | None] = Field(description=f"sibling hashes from the root down ({B64}; null: empty)")
    leaf: MapLeaf | None = Field(description="the leaf the path ends at (null: an empty subtree)")


class Commitment(_Answer):
    log_index: int = Field(alias="logIndex", ge=0)
    leaf: str = Field(description=f"the map-commitment entry's leaf ({B64})")
    inclusion_proof: list[str] = Field(alias="inclusionProof", description=f"against the answer's checkpoint ({B64})")


class MapStatus(_Answer):
    tree_size: int = Field(alias="treeSize", ge=0)
    checkpoint: str
    commitment: Commitment | None = Field(
        description="the newest map commitment in the checkpoint's tree (null: the log keeps no map, or has not "
        "committed one yet)"
    )


class Completeness(_Answer):
    """What closes the answer: the newest map commitment in its tree and a map proof per artifact digest."""

    commitment: Commitment
    proofs: dict[str, MapProof] = Field(description="by artifact digest (alg:hex)")


class History(_Answer):
    artifact: str
    aliases: list[str]
    tree_size: int = Field(alias="treeSize", ge=0)
    checkpoint: str
    entries: list[HistoryEntry]
    next: int | None = Field(description="pass as `before` for the next page")
    completeness: Completeness | None = Field(
        default=None,
        description="on the first page, once the map has committed a root inside the answer's tree",
    )


class Edge(_Answer):
    source: str = Field(alias="from")
    target: str = Field(alias="to")
    log_index: int = Field(alias="logIndex", ge=0)
    role: str = Field(
        description="what the source is to the target in that entry: 'input' (made from) or 'evaluation data' "
        "(an evaluation's test data, never a training input)"
    )


class Lineage(_Answer):
    artifact: str
    direction: str = Field(pattern="^(up|down)$")
    depth: int
    tree_size: int = Field(alias="treeSize", ge=0)
    checkpoint: str
    nodes: list[str]
    edges: list[Edge]
    entries: list[NamedEntry]
    truncated: bool
    completeness: Completeness | None = Field(
        default=None, description="with `complete=true`, once the map has committed a root inside the answer's tree"
    )


class SearchEntry(NamedEntry):
    pass


class Search(_Answer):
    tree_size: int = Field(alias="treeSize", ge=0)
    checkpoint: str
    entries: list[SearchEntry]
    next: int | None
    proves: str = Field(
        description="`inclusion`: each entry is proved in the log, but the list is an index lookup that is not "
        "proved complete; an artifact's history or lineage proves completeness"
    )


class Evidence(_Answer):
    log_index: int = Field(alias="logIndex", ge=0)
    quote: str = Field(description=B64)
    verified_at: int = Field(alias="verifiedAt", description="Unix seconds")
    trusted_roots: list[str] = Field(alias="trustedRoots")
    collateral: dict[str, str] = Field(description=f"the PCS collateral by name ({B64})")
    verdict: dict[str, Any]
    gpus: list[dict[str, str]] | None = Field(
        default=None,
        description="composite entries: each GPU's evidence as submitted (arch, nonce, evidence, certificate)",
    )
    gpu_roots: dict[str, str] | None = Field(
        default=None,
        alias="gpuRoots",
        description="SHA-256 of the GPU device identity and RIM signing roots the log trusts",
    )
    rims: dict[str, str] | None = Field(
        default=None, description=f"composite entries: the RIMs their GPUs were appraised with, by SHA-256 ({B64})"
    )
    ocsp: dict[str, str] | None = Field(
        default=None,
        description=f"composite entries: the OCSP responses (DER) their certificates were judged with ({B64})",
    )


class CollateralSet(_Answer):
    digest: str = Field(pattern="^[0-9a-f]{64}$")
    collateral: dict[str, str] = Field(description=B64)


class GpuRim(_Answer):
    digest: str = Field(pattern="^[0-9a-f]{64}$")
    rim_id: str = Field(alias="rimId")
    rim: str = Field(description=f"the RIM document ({B64})")


class GpuOcsp(_Answer):
    digest: str = Field(pattern="^[0-9a-f]{64}$")
    certificate: str = Field(description="SHA-256 of the issuer's SubjectPublicKeyInfo and the serial, hex, ':'")
    this_update: int = Field(alias="thisUpdate", description="Unix seconds")
    next_update: int = Field(alias="nextUpdate", description="Unix seconds")
    response: str = Field(description=f"the OCSP response, DER ({B64})")


class Submissions(_Answer):
    start: int = Field(ge=0)
    submissions: list[dict[str, Any]] = Field(description="each exactly as admitted (see Submission)")


class Health(_Answer):
    status: str


class Readiness(_Answer):
    status: str
    tree_size: int = Field(alias="treeSize", ge=0)


class Tenant(_Answer):
    name: str
    rate_per_s: float = Field(alias="ratePerSecond")
    burst: int
    daily_quota: int | None = Field(alias="dailyQuota")


class TenantUsage(Tenant):
    used_today: int = Field(alias="usedToday")
    tokens: list[str]


class Tenants(_Answer):
    tenants: list[TenantUsage]


class IssuedToken(_Answer):
    id: str
    token: str = Field(description="the secret: shown only here")
    tenant: str
    scopes: list[str]
    holder: str | None = Field(default=None, description="a grant's holder")
    expires_at: str | None = Field(default=None, alias="expiresAt", description="when a grant ends (ISO 8601)")
    artifacts: list[str] | None = Field(default=None, description="the artifacts a scoped grant covers")


class Disclosures(_Answer):
    log_index: int = Field(alias="logIndex", ge=0)
    disclosures: list[str] = Field(description="the entry's disclosures (SD-JWT style, base64url)")


class Erased(_Answer):
    log_index: int = Field(alias="logIndex", ge=0)
    erased_at: str = Field(alias="erasedAt", description="ISO 8601")


class BlindingKey(_Answer):
    tenant: str
    key: str | None = Field(
        default=None, description="the tenant's blinding key (base64), for its own token and whole-tenant grants"
    )
    hidden: dict[str, str] | None = Field(
        default=None,
        description="for a grant scoped to artifacts: each artifact's blinded index key (blinded+alg:hex)",
    )


class DisclosureRead(_Answer):
    at: str
    log_index: int | None = Field(alias="logIndex", ge=0, description="None for a hand-over of the blinding key")
    reader: str
    action: str = Field(description="read, erase or blinding-key")


class DisclosureReads(_Answer):
    tenant: str
    reads: list[DisclosureRead]


_WHY = {
    400: "the request is malformed or refused (the problem type says why)",
    401: "a bearer token is required, or it is not valid",
    403: "the token may not do this",
    404: "not found",
    408: "the request body did not arrive in time",
    409: "conflict",
    410: "the log is frozen",
    413: "the request body, or the entry it would make, is too large",
    422: "well formed, but not acceptable (signature chain, quote, binding or policy)",
    429: "rate limit or daily quota reached (see Retry-After)",
    500: "the server failed",
    503: "temporarily unavailable (see Retry-After)",
}
ALWAYS = (500, 503)
"""What any route can answer: an internal error, or its database being unreachable."""


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The problem+json error responses of a route, for ``responses=``."""
    schema = {"$ref": COMPONENTS + "Problem"}
    return {
        s: {"description": _WHY[s], "content": {PROBLEM_JSON: {"schema": schema}}} for s in sorted({*statuses, *ALWAYS})
    }


def answers(
    model: type[BaseModel] | None = None,
    *errors: int,
    media_type: str = "application/json",
    description: str = "OK",
    status: int = 200,
    extra: dict[int | str, dict[str, Any]] | None = None,
) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: its answer (a model, or a ``media_type`` of bytes or text) and its errors."""
    if model is not None:
        ok: dict[str, Any] = {"description": description, "model": model}
    elif media_type.startswith("text/"):
        ok = {"description": description, "content": {media_type: {"schema": {"type": "string"}}}}
    else:
        ok = {"description": description, "content": {media_type: {"schema": {"type": "string", "format": "binary"}}}}
    return {status: ok, **(extra or {}), **problems(*errors)}
