"""POST /api/v1/entries (admission → receipt) and entry reads."""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.routing import APIRoute

from atlas_log._encoding import b64decode, b64encode, hexdecode, json_loads
from atlas_log.errors import FormatError
from atlas_log_server.api import schemas
from atlas_log_server.api.deps import log_context
from atlas_log_server.api.params import check_index
from atlas_log_server.api.schemas import SUBMISSION, answers
from atlas_log_server.context import LogContext
from atlas_log_server.db.engine import database_unavailable
from atlas_log_server.db.repository import StoredEntry
from atlas_log_server.errors import InvalidRequest, NotFound, ServerError
from atlas_log_server.log.sequencer import PendingEntry

router = APIRouter(prefix="/api/v1", tags=["entries"])

Ctx = Annotated[LogContext, Depends(log_context)]


class _BareRoute(APIRoute):
    """A route whose endpoint takes only the :class:`Request`: it is called directly, skipping dependency
    resolution (query, header and cookie parsing) on the hot write path. It stays in the OpenAPI document."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint = self.endpoint

        async def handler(request: Request) -> Response:
            response: Response = await endpoint(request)
            return response

        return handler


async def submit_entry(request: Request) -> Response:
    ctx = await log_context(request)
    started = time.perf_counter()
    try:
        response, created = await _submit(request, ctx)
    except ServerError as exc:
        ctx.metrics.admissions.labels(exc.slug).inc()
        raise
    except Exception as exc:
        ctx.metrics.admissions.labels("database-unavailable" if database_unavailable(exc) else "internal-error").inc()
        raise
    ctx.metrics.admissions.labels("logged" if created else "existing").inc()
    ctx.metrics.receipt_seconds.observe(time.perf_counter() - started)
    return response


async def _submit(request: Request, ctx: LogContext) -> tuple[Response, bool]:
    grant = await ctx.access.authorize_submission(request)
    raw = await request.body()
    pending: PendingEntry = await ctx.admission.admit(raw, int(time.time()), grant.tenant if grant else None)
    placed = await ctx.sequencer.submit(pending)
    receipt = await ctx.receipts.receipt(pending.entry_id, placed)
    if request.query_params.get("wait") == "witnessed":
        receipt = await ctx.receipts.witnessed(receipt)
    body = orjson.dumps(receipt.to_json())
    return Response(body, status_code=201 if placed.created else 200, media_type="application/json"), placed.created


router.add_api_route(
    "/entries",
    submit_entry,
    methods=["POST"],
    route_class_override=_BareRoute,
    status_code=201,
    summary="Submit a DSSE-signed entry; returns a receipt with an inclusion proof and signed checkpoint",
    openapi_extra={
        "requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": SUBMISSION}}}}
    },
    responses={
        200: {"description": "the entry was already logged: its existing receipt", "model": schemas.Receipt},
        **answers(schemas.Receipt, 400, 401, 403, 408, 409, 410, 413, 422, 429, status=201, description="logged"),
    },
)


def entry_json(e: StoredEntry) -> dict[str, Any]:
    try:
        submission: Any = json_loads(e.submission, "submission")
    except FormatError:  # stored before today's limits (or by hand): served as the stored bytes
        submission = b64encode(e.submission)
    return {
        "logIndex": e.index,
        "entryId": e.entry_id.hex(),
        "leafHash": b64encode(e.leaf_hash),
        "leaf": b64encode(e.leaf),
        "integratedTime": e.integrated_time,
        "submission": submission,
    }


@router.get(
    "/entries/{index}",
    summary="An entry by log index, with the submission it was admitted from",
    response_model=None,
    responses=answers(schemas.Entry, 400, 404),
)
async def get_entry(index: int, ctx: Ctx) -> dict[str, Any]:
    check_index(index)
    e = await ctx.repo.entry_by_index(index)
    if e is None:
        size = (await ctx.repo.state()).size
        holds = f"the log holds entries #0 to #{size - 1}" if size else "the log holds no entries yet"
        raise NotFound("entry-not-found", f"no entry at index {index}: {holds}")
    return entry_json(e)


@router.get(
    "/entries",
    summary="An entry by its leaf hash (base64 or 64 hex digits)",
    response_model=None,
    responses=answers(schemas.Entry, 400, 404),
)
async def find_entry(ctx: Ctx, leaf_hash: Annotated[str, Query(alias="leafHash", max_length=100)]) -> dict[str, Any]:
    try:
        if len(leaf_hash) == 64 and all(c in "0123456789abcdef" for c in leaf_hash):
            digest = hexdecode(leaf_hash, "leafHash")
        else:
            digest = b64decode(leaf_hash, "leafHash")
    except FormatError as exc:
        raise InvalidRequest("invalid-leaf-hash", str(exc)) from exc
    if len(digest) != 32:
        raise InvalidRequest("invalid-leaf-hash", "leafHash must be 32 bytes")
    e = await ctx.repo.entry_by_leaf_hash(digest)
    if e is None:
        raise NotFound("entry-not-found", "no entry with that leaf hash")
    return entry_json(e)
