"""Admin operations (the admin token): tenants, their tokens, revocation."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from atlas_log.disclosure import BLINDED
from atlas_log.errors import FormatError
from atlas_log.intoto import normalise_digest
from atlas_log_server.access import SCOPES
from atlas_log_server.api import schemas
from atlas_log_server.api.deps import log_context
from atlas_log_server.api.schemas import answers, problems
from atlas_log_server.context import LogContext
from atlas_log_server.errors import InvalidRequest, NotFound


async def admin_context(request: Request) -> LogContext:
    ctx = await log_context(request)
    ctx.access.require_admin(request)
    return ctx


router = APIRouter(prefix="/admin/v1", tags=["admin"])
Admin = Annotated[LogContext, Depends(admin_context)]
TenantName = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9._-]{0,62}$")]


class TenantSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    rate_per_s: float = Field(alias="ratePerSecond", gt=0, le=1_000_000)
    burst: int = Field(ge=1, le=1_000_000)
    daily_quota: int | None = Field(default=None, alias="dailyQuota", ge=0, le=(1 << 63) - 1)


class TokenSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scopes: list[str] = Field(default_factory=lambda: ["submit"], min_length=1, max_length=8)


class GrantSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    holder: str = Field(
        min_length=1,
        max_length=200,
        pattern=r"^[^\x00-\x1f\x7f]+$",
        description="whom the grant is for (an auditor, a regulator); no control characters",
    )
    expires_in_days: float = Field(
        default=90, alias="expiresInDays", gt=0, le=3660, description="the grant ends this many days from now"
    )
    artifacts: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9.+_-]{0,63}:[0-9a-fA-F]{2,256}$")]] | None = (
        Field(
            default=None,
            min_length=1,
            max_length=1000,
            description="scope the grant to the entries naming one of these digests (alg:hex), publicly or "
            "hidden; without it the grant covers every entry of the tenant",
        )
    )


@router.put(
    "/tenants/{name}",
    summary="Create or update a tenant's rate limit and daily quota",
    response_model=None,
    responses=answers(schemas.Tenant, 400, 401, 403),
)
async def put_tenant(name: TenantName, spec: TenantSpec, ctx: Admin) -> dict[str, Any]:
    await ctx.access.put_tenant(name, spec.rate_per_s, spec.burst, spec.daily_quota)
    return {"name": name, "ratePerSecond": spec.rate_per_s, "burst": spec.burst, "dailyQuota": spec.daily_quota}


@router.get(
    "/tenants",
    summary="Tenants with today's usage and their live tokens (never the secrets)",
    response_model=None,
    responses=answers(schemas.Tenants, 401, 403),
)
async def list_tenants(ctx: Admin) -> dict[str, Any]:
    return {"tenants": await ctx.access.tenants()}


@router.post(
    "/tenants/{name}/tokens",
    status_code=201,
    summary="Issue a token (its secret is shown only here)",
    response_model=None,
    responses=answers(schemas.IssuedToken, 400, 401, 403, 404, status=201, description="the new token"),
)
async def create_token(name: TenantName, spec: TokenSpec, ctx: Admin) -> dict[str, Any]:
    scopes = frozenset(spec.scopes)
    if scopes - SCOPES:
        raise InvalidRequest("invalid-request", f"unknown scopes {sorted(scopes - SCOPES)}; known: {sorted(SCOPES)}")
    issued = await ctx.access.issue_token(name, scopes)
    if issued is None:
        raise NotFound("tenant-not-found", f"no tenant {name!r}; create it with PUT /admin/v1/tenants/{name}")
    return {"id": issued[0], "token": issued[1], "tenant": name, "scopes": sorted(scopes)}


@router.post(
    "/tenants/{name}/grants",
    status_code=201,
    summary="Grant an auditor or regulator read access to a tenant's confidential disclosures",
    response_model=None,
    responses=answers(schemas.IssuedToken, 400, 401, 403, 404, status=201, description="the grant's token"),
)
async def create_grant(name: TenantName, spec: GrantSpec, ctx: Admin) -> dict[str, Any]:
    """A ``read-disclosures`` token of the tenant for ``holder``, ending after ``expiresInDays``; revoke it
    with ``DELETE /admin/v1/tokens/{id}``. Every read it makes is recorded for the tenant to see."""
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(days=spec.expires_in_days)
    scopes = frozenset({"read-disclosures"})
    artifacts = None if spec.artifacts is None else sorted({_real_digest(a) for a in spec.artifacts})
    issued = await ctx.access.issue_token(name, scopes, expires, spec.holder, artifacts)
    if issued is None:
        raise NotFound("tenant-not-found", f"no tenant {name!r}; create it with PUT /admin/v1/tenants/{name}")
    return {
        "id": issued[0],
        "token": issued[1],
        "tenant": name,
        "scopes": sorted(scopes),
        "holder": spec.holder,
        "expiresAt": expires.isoformat(),
        **({} if artifacts is None else {"artifacts": artifacts}),
    }


def _real_digest(artifact: str) -> str:
    """A grant's artifact, normalised; a blinded digest is refused (a grant names what it reveals)."""
    alg, _, value = artifact.partition(":")
    try:
        normalised = normalise_digest(alg, value)
    except FormatError as exc:
        raise InvalidRequest("invalid-grant", f"artifact {artifact[:80]!r}: {exc}") from exc
    if normalised[0].startswith(BLINDED):
        raise InvalidRequest("invalid-grant", "a grant names an artifact by its real digest, not a blinded one")
    return ":".join(normalised)


@router.delete(
    "/tokens/{token_id}",
    summary="Revoke a token",
    status_code=204,
    response_class=Response,
    responses={204: {"description": "revoked"}, **problems(400, 401, 403, 404)},
)
async def revoke_token(token_id: Annotated[str, Path(pattern=r"^[0-9a-f]{16}$")], ctx: Admin) -> Response:
    if not await ctx.access.revoke(token_id):
        raise NotFound("token-not-found", f"no token {token_id}")
    return Response(status_code=204)
