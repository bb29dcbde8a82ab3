"""What entries were admitted from, for auditors and monitors: an entry's raw quote with the collateral it was
verified with, collateral sets by digest, and the stored submissions of a range of entries."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request, Response

from atlas_log._encoding import b64encode, json_loads
from atlas_log.entry import parse_leaf
from atlas_log.errors import FormatError
from atlas_log.tdx.binding import GPU_TAG
from atlas_log.tee import OwnQuote
from atlas_log.tiles import TILE_WIDTH
from atlas_log_server.api import schemas
from atlas_log_server.api.deps import log_context
from atlas_log_server.api.params import check_index, int_param, int_params_doc
from atlas_log_server.api.schemas import answers
from atlas_log_server.api.tiles import IMMUTABLE
from atlas_log_server.context import LogContext
from atlas_log_server.errors import Internal, InvalidRequest, NotFound, Unavailable

router = APIRouter(prefix="/api/v1", tags=["entries"])

Ctx = Annotated[LogContext, Depends(log_context)]


@router.get(
    "/entries/{index}/evidence",
    summary="The raw TDX quote of an entry and the exact PCS collateral it was verified with",
    response_model=None,
    responses=answers(schemas.Evidence, 400, 404),
)
async def get_evidence(index: int, ctx: Ctx) -> dict[str, Any]:
    check_index(index)
    e = await ctx.repo.entry_by_index(index)
    if e is None:
        size = (await ctx.repo.state()).size
        holds = f"the log holds entries #0 to #{size - 1}" if size else "the log holds no entries yet"
        raise NotFound("entry-not-found", f"no entry at index {index}: {holds}")
    try:
        tee = parse_leaf(e.leaf).tee
        submission: Any = json_loads(e.submission, "submission")
        quote = submission["tee"]["quote"]
    except (FormatError, KeyError, TypeError):
        tee = quote = None
    if tee is None or not isinstance(tee.evidence, OwnQuote):
        raise NotFound("no-evidence", f"entry {index} carries no quote of its own")
    digest = tee.evidence.verdict.collateral_set
    collateral = await ctx.attestation.store.by_digest(digest)
    if collateral is None:
        raise Internal("evidence-missing", "the collateral this entry was verified with is not stored")
    answer = {
        "logIndex": index,
        "quote": quote,
        # The quote was verified at admission: the entry's integration time.
        "verifiedAt": e.integrated_time,
        "trustedRoots": ctx.attestation.summary["trustedRoots"],
        "collateral": collateral.to_json(),
        "verdict": tee.to_json(),
    }
    if tee.binding == GPU_TAG:
        rims = {}
        for digest in {d for g in tee.gpus for _, _, _, d in g.rims}:
            stored = await ctx.attestation.rims.by_digest(digest)
            if stored is None:
                raise Internal("evidence-missing", f"the RIM {digest} this entry was appraised with is not stored")
            rims[digest] = b64encode(stored.document)
        responses = {}
        for digest in {d for g in tee.gpus for _, _, _, d in g.revocation}:
            held = await ctx.attestation.ocsp.by_digest(digest)
            if held is None:
                raise Internal(
                    "evidence-missing", f"the OCSP response {digest} this entry was judged with is not stored"
                )
            responses[digest] = b64encode(held.response)
        gpu = ctx.attestation.summary["gpu"]
        answer |= {
            "gpus": submission["tee"]["gpus"],
            "gpuRoots": {"device": gpu["deviceRoot"], "rim": gpu["rimRoot"]},
            "rims": rims,
            "ocsp": responses,
        }
    return answer


@router.get(
    "/rims/{digest}",
    summary="A GPU reference integrity manifest the log appraised GPU evidence with, by the SHA-256 entries record",
    response_class=Response,
    responses=answers(schemas.GpuRim, 400, 404),
)
async def get_rim(digest: str, ctx: Ctx) -> Response:
    _check_digest(digest)
    stored = await ctx.attestation.rims.by_digest(digest)
    if stored is None:
        raise NotFound("rim-not-found", f"no stored RIM has digest {digest}")
    body = orjson.dumps({"digest": digest, "rimId": stored.rim_id, "rim": b64encode(stored.document)})
    return Response(body, media_type="application/json", headers={"Cache-Control": IMMUTABLE})


@router.get(
    "/ocsp/{digest}",
    summary="An OCSP response the log judged a GPU device or RIM certificate with, by the SHA-256 entries record",
    response_class=Response,
    responses=answers(schemas.GpuOcsp, 400, 404),
)
async def get_ocsp(digest: str, ctx: Ctx) -> Response:
    _check_digest(digest)
    held = await ctx.attestation.ocsp.by_digest(digest)
    if held is None:
        raise NotFound("ocsp-not-found", f"no stored OCSP response has digest {digest}")
    body = orjson.dumps(
        {
            "digest": digest,
            "certificate": held.certificate,
            "thisUpdate": held.this_update,
            "nextUpdate": held.next_update,
            "response": b64encode(held.response),
        }
    )
    return Response(body, media_type="application/json", headers={"Cache-Control": IMMUTABLE})


def _check_digest(digest: str) -> None:
    if len(digest) != 64 or not all(c in "0123456789abcdef" for c in digest):
        raise InvalidRequest("invalid-digest", "the digest is 64 lowercase hex digits")


@router.get(
    "/collateral/{digest}",
    summary="A set of PCS collateral the log verified quotes with, by the digest entries record (tee.collateral.set)",
    response_class=Response,
    responses=answers(schemas.CollateralSet, 400, 404),
)
async def get_collateral(digest: str, ctx: Ctx) -> Response:
    _check_digest(digest)
    collateral = await ctx.attestation.store.by_digest(digest)
    if collateral is None:
        raise NotFound("collateral-not-found", f"no stored collateral set has digest {digest}")
    body = orjson.dumps({"digest": digest, "collateral": collateral.to_json()})
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
        raise InvalidRequest("invalid-request", f"count must be at most {MAX_SUBMISSIONS}")
    ctx = await log_context(request)
    size = (await ctx.repo.state()).size
    if start + count > size:
        raise NotFound("entry-not-found", f"entries {start}..{start + count - 1} do not all exist at tree size {size}")
    raws = await ctx.repo.submissions(start, count)
    if len(raws) != count:
        raise Unavailable("not-ready", "entries are not readable yet", retry_after=1)
    # Each stored submission is the JSON object it was admitted as: the array embeds them byte for byte.
    body = b'{"start":' + str(start).encode() + b',"submissions":[' + b",".join(raws) + b"]}"
    return Response(body, media_type="application/json", headers={"Cache-Control": IMMUTABLE})
