"""Log metadata and health endpoints."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from atlas_log._encoding import b64encode
from atlas_log_server.api import schemas
from atlas_log_server.api.deps import log_context
from atlas_log_server.api.schemas import answers
from atlas_log_server.context import LogContext
from atlas_log_server.errors import Unavailable

router = APIRouter(tags=["log"])
Ctx = Annotated[LogContext, Depends(log_context)]


@router.get(
    "/api/v1/log",
    summary="The log's origin, verifier key and current size",
    response_model=None,
    responses=answers(schemas.LogInfo),
)
async def log_info(ctx: Ctx) -> dict[str, Any]:
    state = await ctx.repo.state()
    return {
        "origin": state.origin,
        "verifierKey": ctx.verifier.vkey,
        "treeSize": state.size,
        "rootHash": b64encode(state.root_hash),
        "attestation": ctx.attestation.summary,
        "frozen": None if state.frozen_note is None else {"checkpoint": state.frozen_note.decode()},
        # The log's word: a verifier pins witness keys it got elsewhere.
        "witnesses": [w.split()[-1] for w in ctx.settings.witnesses],
        "witnessQuorum": ctx.settings.witness_quorum,
    }


@router.get(
    "/healthz", summary="Liveness: the process is serving", response_model=None, responses=answers(schemas.Health)
)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz", summary="Readiness: the database answers", response_model=None, responses=answers(schemas.Readiness)
)
async def readyz(ctx: Ctx) -> dict[str, Any]:
    try:
        state = await ctx.repo.state()
    except Exception as exc:
        raise Unavailable("not-ready", "the database is not reachable", retry_after=1) from exc
    return {"status": "ready", "treeSize": state.size}
