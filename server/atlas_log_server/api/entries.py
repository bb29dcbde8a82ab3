"""POST /api/v1/entries (admission → receipt) and entry reads."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.routing import APIRoute

from atlas_log._encoding import b64decode, b64encode, json_loads
from atlas_log.checkpoint import open_checkpoint, succession
from atlas_log.errors import FormatError
from atlas_log.merkle import leaf_hash, verify_inclusion
from atlas_log.receipt import Receipt
from atlas_log.tdx.collateral import Collateral
from atlas_log.tiles import TILE_WIDTH
from atlas_log_server.api import schemas
from atlas_log_server.api.deps import log_context
from atlas_log_server.api.params import MAX_INT, int_param, int_params_doc
from atlas_log_server.api.schemas import SUBMISSION, answers
from atlas_log_server.api.tiles import IMMUTABLE
from atlas_log_server.context import LogContext
from atlas_log_server.db.engine import database_unavailable
from atlas_log_server.db.repository import StoredEntry
from atlas_log_server.errors import Problem, bad_request, not_found
from atlas_log_server.log.sequencer import LogFrozen, Overloaded, PendingEntry, QuoteReused, Sequenced
from atlas_log_server.log.signer import SignerUnavailable, SigningRefused

router = APIRouter(prefix="/api/v1", tags=["entries"])

Ctx = Annotated[LogContext, Depends(log_context)]


def _check_index(index: int) -> None:
    if not 0 <= index <= MAX_INT:
        raise bad_request("invalid-index", f"a log index is an integer from 0 to {MAX_INT}")


def frozen_problem(note: bytes, ctx: LogContext) -> Problem:
    found = succession(open_checkpoint(note, ctx.verifier))
    where = f"; its successor is {found.url} (key {found.vkey})" if found is not None and found.url else ""
    return Problem(410, "log-frozen", f"this log is frozen and accepts no entries{where}")


async def build_receipt(ctx: LogContext, pending: PendingEntry, placed: Sequenced) -> Receipt:
    """A receipt from one consistent snapshot, self-verified before it is returned."""
    batch = placed.batch
    if batch.old_size <= placed.index < batch.checkpoint.size:
        size, note, root = batch.checkpoint.size, batch.note, batch.checkpoint.root_hash
        hashes = batch.inclusion_proof(placed.index)
    else:  # logged by an earlier batch: prove against the current checkpoint, from tiles
        state = await ctx.repo.state()
        if state.checkpoint is None:
            raise Problem(503, "not-ready", "the log has no checkpoint yet", headers={"Retry-After": "1"})
        size, note, root = state.size, state.checkpoint, state.root_hash
        _, hashes = await ctx.proofs.inclusion(placed.index, size)
    if placed.created and placed.leaf is not None:
        entry_id, leaf = pending.entry_id, placed.leaf
    else:
        stored = await ctx.repo.entry_by_index(placed.index)
        if stored is None:
            raise Problem(503, "not-ready", "the entry is not readable yet", headers={"Retry-After": "1"})
        entry_id, leaf = stored.entry_id, stored.leaf
    lh = leaf_hash(leaf)
    verify_inclusion(lh, placed.index, size, hashes, root)
    return Receipt(entry_id, placed.index, lh, leaf, size, tuple(hashes), note)


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
    except Problem as exc:
        ctx.metrics.admissions.labels(exc.slug).inc()
        raise
    except Exception as exc:
        ctx.metrics.admissions.labels("database-unavailable" if database_unavailable(exc) else "internal-error").inc()
        raise
    ctx.metrics.admissions.labels("logged" if created else "existing").inc()
    ctx.metrics.receipt_seconds.observe(time.perf_counter() - started)
    return response


async def _submit(request: Request, ctx: LogContext) -> tuple[Response, bool]:
    await ctx.access.authorize_submission(request)
    raw = await request.body()
    pending: PendingEntry = await ctx.admission.admit(raw, int(time.time()))
    try:
        placed = await ctx.sequencer.submit(pending)
    except Overloaded as exc:
        raise Problem(503, "overloaded", str(exc), headers={"Retry-After": "1"}) from exc
    except LogFrozen as exc:
        raise frozen_problem(exc.note, ctx) from exc
    except SignerUnavailable as exc:
        raise Problem(503, "signer-unavailable", str(exc), headers={"Retry-After": "5"}) from exc
    except SigningRefused as exc:  # the operator must act (the message says how); retrying alone will not help
        raise Problem(503, "signing-refused", str(exc), headers={"Retry-After": "60"}) from exc
    except QuoteReused as exc:
        raise Problem(
            409,
            "quote-reused",
            f"this TDX quote already attests entry {exc.index}, and a quote attests one entry: make a fresh quote "
            f"for this statement (or, for a key-binding quote, refer to entry {exc.index} with "
            f"tee.keyAttestationEntry)",
        ) from exc
    receipt = await build_receipt(ctx, pending, placed)
    if request.query_params.get("wait") == "witnessed":
        receipt = await _witnessed(ctx, receipt)
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

WITNESS_WAIT_S = 30.0


async def _witnessed(ctx: LogContext, receipt: Receipt) -> Receipt:
    """The receipt proved against the first published (witness-cosigned) checkpoint that includes the entry."""
    if not ctx.settings.witnesses:
        raise bad_request("no-witnesses", "this log has no witnesses configured; omit wait=witnessed")
    deadline = asyncio.get_running_loop().time() + WITNESS_WAIT_S
    while True:
        published = await ctx.repo.latest_published()
        if published is not None and published[0] > receipt.log_index:
            size, note = published
            leaf_hash_, hashes = await ctx.proofs.inclusion(receipt.log_index, size)
            if leaf_hash_ != receipt.leaf_hash:
                raise Problem(500, "internal-error", "the published tree disagrees with the receipt")
            return Receipt(
                receipt.entry_id, receipt.log_index, receipt.leaf_hash, receipt.leaf, size, tuple(hashes), note
            )
        if asyncio.get_running_loop().time() > deadline:
            raise Problem(
                503,
                "witness-timeout",
                f"entry {receipt.log_index} is logged, but no witnessed checkpoint "
                f"includes it yet; fetch its proof later",
                headers={"Retry-After": "5"},
            )
        await asyncio.sleep(0.1)


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
    _check_index(index)
    e = await ctx.repo.entry_by_index(index)
    if e is None:
        raise not_found("entry-not-found", f"no entry at index {index}")
    return entry_json(e)


@router.get(
    "/entries/{index}/evidence",
    summary="The raw TDX quote of an entry and the exact PCS collateral it was verified with",
    response_model=None,
    responses=answers(schemas.Evidence, 400, 404),
)
async def get_evidence(index: int, ctx: Ctx) -> dict[str, Any]:
    _check_index(index)
    e = await ctx.repo.entry_by_index(index)
    if e is None:
        raise not_found("entry-not-found", f"no entry at index {index}")
    try:
        leaf: Any = json_loads(e.leaf, "leaf")
        submission: Any = json_loads(e.submission, "submission")
        tee, quote = leaf["body"].get("tee"), submission["tee"]["quote"]
        digest = tee["collateral"]["set"]
    except (FormatError, KeyError, TypeError, AttributeError):
        tee = quote = digest = None
    if not isinstance(tee, dict) or "quoteSha256" not in tee or not isinstance(digest, str):
        raise not_found("no-evidence", f"entry {index} carries no quote of its own")
    collateral = await ctx.attestation.store.by_digest(digest)
    if collateral is None:
        raise Problem(500, "evidence-missing", "the collateral this entry was verified with is not stored")
    return {
        "logIndex": index,
        "quote": quote,
        # The quote was verified at admission: the entry's integration time.
        "verifiedAt": e.integrated_time,
        "trustedRoots": ctx.attestation.summary["trustedRoots"],
        "collateral": _collateral_json(collateral),
        "verdict": tee,
    }


def _collateral_json(collateral: Collateral) -> dict[str, str]:
    return {name: b64encode(getattr(collateral, name)) for name in collateral.digests()}


@router.get(
    "/collateral/{digest}",
    summary="A set of PCS collateral the log verified quotes with, by the digest entries record (tee.collateral.set)",
    response_class=Response,
    responses=answers(schemas.CollateralSet, 400, 404),
)
async def get_collateral(digest: str, ctx: Ctx) -> Response:
    if len(digest) != 64 or not all(c in "0123456789abcdef" for c in digest):
        raise bad_request("invalid-digest", "the collateral digest is 64 lowercase hex digits")
    collateral = await ctx.attestation.store.by_digest(digest)
    if collateral is None:
        raise not_found("collateral-not-found", f"no stored collateral set has digest {digest}")
    body = orjson.dumps({"digest": digest, "collateral": _collateral_json(collateral)})
    return Response(body, media_type="application/json", headers={"Cache-Control": IMMUTABLE})


MAX_SUBMISSIONS = TILE_WIDTH


@router.get(
    "/submissions",
    summary="The submissions entries were admitted from, for a range of log indices (monitors re-verify them)",
    openapi_extra=int_params_doc(
        ("start", 0, "first log index"), ("count", 1, f"how many entries, at most {MAX_SUBMISSIONS}")
    ),
    response_class=Response,
    responses=answers(schemas.Submissions, 400, 404),
)
async def get_submissions(request: Request) -> Response:
    start, count = int_param(request, "start"), int_param(request, "count", 1)
    if count > MAX_SUBMISSIONS:
        raise bad_request("invalid-request", f"count must be at most {MAX_SUBMISSIONS}")
    ctx = await log_context(request)
    size = (await ctx.repo.state()).size
    if start + count > size:
        raise not_found("entry-not-found", f"entries {start}..{start + count - 1} do not all exist at tree size {size}")
    raws = await ctx.repo.submissions(start, count)
    if len(raws) != count:
        raise Problem(503, "not-ready", "entries are not readable yet", headers={"Retry-After": "1"})
    # Each stored submission is the JSON object it was admitted as: the array embeds them byte for byte.
    body = b'{"start":' + str(start).encode() + b',"submissions":[' + b",".join(raws) + b"]}"
    return Response(body, media_type="application/json", headers={"Cache-Control": IMMUTABLE})


@router.get(
    "/entries",
    summary="An entry by its leaf hash (base64 or 64 hex digits)",
    response_model=None,
    responses=answers(schemas.Entry, 400, 404),
)
async def find_entry(ctx: Ctx, leaf_hash: Annotated[str, Query(alias="leafHash", max_length=100)]) -> dict[str, Any]:
    try:
        if len(leaf_hash) == 64 and all(c in "0123456789abcdef" for c in leaf_hash):
            digest = bytes.fromhex(leaf_hash)
        else:
            digest = b64decode(leaf_hash, "leafHash")
    except FormatError as exc:
        raise bad_request("invalid-leaf-hash", str(exc)) from exc
    if len(digest) != 32:
        raise bad_request("invalid-leaf-hash", "leafHash must be 32 bytes")
    e = await ctx.repo.entry_by_leaf_hash(digest)
    if e is None:
        raise not_found("entry-not-found", "no entry with that leaf hash")
    return entry_json(e)
