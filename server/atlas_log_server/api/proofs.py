"""Dynamic inclusion and consistency proofs, computed from tiles.

These are the hottest reads, so they parse their own parameters and serialise their own JSON.
"""

from __future__ import annotations

import json

from fastapi import APIRouter, Request, Response

from atlas_log._encoding import b64encode
from atlas_log_server.api import schemas
from atlas_log_server.api.deps import log_context
from atlas_log_server.api.params import int_param, int_params_doc
from atlas_log_server.api.schemas import answers
from atlas_log_server.context import LogContext
from atlas_log_server.errors import bad_request

router = APIRouter(prefix="/api/v1/proofs", tags=["proofs"])


async def _check_size(ctx: LogContext, size: int, name: str) -> None:
    """Sizes only grow, so a size at or below one already seen needs no database round trip."""
    if size <= ctx.proofs.known_size:
        return
    state = await ctx.repo.state()
    ctx.proofs.known_size = max(ctx.proofs.known_size, state.size)
    if size > state.size:
        raise bad_request("tree-size-too-large", f"{name} ({size}) exceeds the log's size {state.size}")


def _json(obj: object) -> Response:
    return Response(json.dumps(obj, separators=(",", ":")), media_type="application/json")


@router.get(
    "/inclusion",
    summary="Inclusion proof of the leaf at `index` in the tree of `treeSize` leaves",
    response_class=Response,
    responses=answers(schemas.InclusionProof, 400),
    openapi_extra=int_params_doc(("index", 0, "leaf index"), ("treeSize", 1, "tree size to prove against")),
)
async def inclusion(request: Request) -> Response:
    index, tree_size = int_param(request, "index"), int_param(request, "treeSize", 1)
    if index >= tree_size:
        raise bad_request("index-out-of-range", f"index {index} must be smaller than treeSize {tree_size}")
    ctx = await log_context(request)
    await _check_size(ctx, tree_size, "treeSize")
    leaf_hash, hashes = await ctx.proofs.inclusion(index, tree_size)
    return _json(
        {
            "logIndex": index,
            "treeSize": tree_size,
            "leafHash": b64encode(leaf_hash),
            "hashes": [b64encode(h) for h in hashes],
        }
    )


@router.get(
    "/consistency",
    summary="Consistency proof between the trees of `from` and `to` leaves",
    response_class=Response,
    responses=answers(schemas.ConsistencyProof, 400),
    openapi_extra=int_params_doc(("from", 1, "the smaller tree size"), ("to", 1, "the larger tree size")),
)
async def consistency(request: Request) -> Response:
    first, second = int_param(request, "from", 1), int_param(request, "to", 1)
    if first > second:
        raise bad_request("invalid-range", f"from ({first}) must not exceed to ({second})")
    ctx = await log_context(request)
    await _check_size(ctx, second, "to")
    hashes = await ctx.proofs.consistency(first, second)
    return _json({"from": first, "to": second, "hashes": [b64encode(h) for h in hashes]})
