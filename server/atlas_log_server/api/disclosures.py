"""Confidential entries' disclosures: read by the submitting tenant and its grant holders (every read
recorded), erased by the tenant or the admin (crypto-shredding), and the tenant's record of reads."""

from __future__ import annotations

import asyncio
import base64
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from atlas_log.disclosure import blinded_artifact
from atlas_log_server.api import schemas
from atlas_log_server.api.deps import log_context
from atlas_log_server.api.schemas import answers
from atlas_log_server.context import LogContext
from atlas_log_server.db.disclosures import StoredDisclosures
from atlas_log_server.errors import Forbidden, Gone, NotFound, ServerError, Unavailable
from atlas_log_server.vault import VaultError, VaultUnavailable

router = APIRouter(prefix="/api/v1", tags=["confidential entries"])
Ctx = Annotated[LogContext, Depends(log_context)]
Index = Annotated[int, Path(ge=0, le=(1 << 63) - 1)]
TenantQuery = Annotated[
    str | None,
    Query(pattern=r"^[a-z0-9][a-z0-9._-]{0,62}$", description="the admin names the tenant; a token gets its own"),
]


class Erasure(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(
        min_length=1,
        max_length=500,
        pattern=r"^[^\x00-\x1f\x7f]+$",
        description="why the disclosures are erased (recorded); no control characters",
    )


async def _stored(ctx: LogContext, index: int) -> StoredDisclosures:
    stored = await ctx.disclosures.get(index)
    if stored is None:
        raise NotFound("no-disclosures", f"entry {index} has no confidential disclosures (or does not exist)")
    return stored


def _denied(index: int) -> ServerError:
    # One answer for "not yours" whoever asks, so a token does not learn whose an entry is.
    return Forbidden("not-granted", f"this token may not read or erase the disclosures of entry {index}")


@router.get(
    "/entries/{index}/disclosures",
    summary="A confidential entry's disclosures, for its tenant and the tenant's grant holders",
    response_model=None,
    responses=answers(schemas.Disclosures, 400, 401, 403, 404, 410),
)
async def read_disclosures(index: Index, request: Request, ctx: Ctx) -> dict[str, Any]:
    reader = await ctx.access.disclosure_reader(request)
    stored = await _stored(ctx, index)
    if not reader.may_read(stored.tenant):
        raise _denied(index)
    if reader.artifacts is not None:
        assert stored.tenant is not None  # may_read holds
        if not await ctx.disclosures.names_any(index, _scope_keys(ctx, stored.tenant, reader.artifacts)):
            raise _denied(index)
    if stored.sealed is None:
        raise Gone("disclosures-erased", f"the disclosures of entry {index} were erased on {stored.erased_at}")
    try:
        disclosures = await asyncio.to_thread(ctx.vault.open, stored.entry_id, stored.sealed)
    except VaultUnavailable as exc:
        raise Unavailable("vault-unavailable", f"the disclosures cannot be opened now: {exc}", retry_after=5) from exc
    except VaultError as exc:
        raise Gone("disclosures-erased", f"the disclosures of entry {index} cannot be opened: {exc}") from exc
    await ctx.disclosures.record(index, stored.tenant, reader.who, "read")
    return {"logIndex": index, "disclosures": disclosures}


def _scope_keys(ctx: LogContext, tenant: str, artifacts: frozenset[str]) -> list[str]:
    """The index keys of a scoped grant's artifacts: each digest, and its blinded form under the tenant's key
    (the entries hiding it)."""
    key = ctx.vault.blinding_key(tenant)
    return sorted(artifacts | {blinded_artifact(key, a) for a in artifacts})


@router.get(
    "/blinding-key",
    summary="The tenant's blinding key, which keys the blinded digests standing for its hidden ones",
    response_model=None,
    responses=answers(schemas.BlindingKey, 400, 401, 403),
)
async def blinding_key(
    request: Request,
    ctx: Ctx,
    tenant: TenantQuery = None,
) -> dict[str, Any]:
    """For the tenant's own token and a whole-tenant grant: the key itself, with which the holder redacts
    digests and looks any hidden artifact up by its real digest. A grant scoped to artifacts gets only their
    blinded index keys (the key would let it test any guess). Every hand-over is recorded for the tenant."""
    reader = await ctx.access.disclosure_reader(request)
    whose = tenant if reader.admin else reader.tenant
    if whose is None:
        raise Forbidden("tenant-required", "the admin names the tenant: ?tenant=NAME")
    if not reader.admin and tenant is not None and tenant != whose:
        raise Forbidden("not-granted", "a token gets only its own tenant's blinding key")
    key = ctx.vault.blinding_key(whose)
    await ctx.disclosures.record(None, whose, reader.who, "blinding-key")
    if reader.artifacts is not None:
        return {"tenant": whose, "hidden": {a: blinded_artifact(key, a) for a in sorted(reader.artifacts)}}
    return {"tenant": whose, "key": base64.b64encode(key).decode("ascii")}


@router.delete(
    "/entries/{index}/disclosures",
    summary="Erase a confidential entry's disclosures for good; the entry and every proof stay valid",
    response_model=None,
    responses=answers(schemas.Erased, 400, 401, 403, 404, 410),
)
async def erase_disclosures(index: Index, erasure: Erasure, request: Request, ctx: Ctx) -> dict[str, Any]:
    """The tenant (its submit token) or the admin destroys the entry's data key: the tombstone is written
    beside the key-encryption key first, then the wrapped key and ciphertext are dropped."""
    reader = await ctx.access.disclosure_reader(request)
    stored = await _stored(ctx, index)
    if not (reader.admin or (reader.owner and reader.may_read(stored.tenant))):
        raise _denied(index)
    if stored.sealed is None:
        raise Gone("disclosures-erased", f"the disclosures of entry {index} were already erased on {stored.erased_at}")
    await asyncio.to_thread(ctx.vault.bury, stored.entry_id)
    await ctx.disclosures.erase(index, reader.who, erasure.reason)
    await ctx.disclosures.record(index, stored.tenant, reader.who, "erase")
    erased = await ctx.disclosures.get(index)
    assert erased is not None and erased.erased_at is not None
    return {"logIndex": index, "erasedAt": erased.erased_at.isoformat()}


@router.get(
    "/disclosure-reads",
    summary="Every read and erasure of a tenant's disclosures, newest first",
    response_model=None,
    responses=answers(schemas.DisclosureReads, 400, 401, 403),
)
async def disclosure_reads(
    request: Request,
    ctx: Ctx,
    tenant: TenantQuery = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> dict[str, Any]:
    reader = await ctx.access.disclosure_reader(request)
    if reader.admin:
        if tenant is None:
            raise Forbidden("tenant-required", "the admin names the tenant: ?tenant=NAME")
        whose = tenant
    elif not reader.owner or (tenant is not None and tenant != reader.tenant):
        raise Forbidden("not-granted", "only the tenant's own token (or the admin) sees its record of reads")
    else:
        assert reader.tenant is not None
        whose = reader.tenant
    return {"tenant": whose, "reads": await ctx.disclosures.reads(whose, limit)}
