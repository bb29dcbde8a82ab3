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

router = APIRouter(prefix="/api/v1/proofs", tags=["proofs"])


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
    ctx = await log_context(request)
    leaf_hash, hashes = await ctx.proofs.checked_inclusion(index, tree_size)
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
    ctx = await log_context(request)
    hashes = await ctx.proofs.checked_consistency(first, second)
    return _json({"from": first, "to": second, "hashes": [b64encode(h) for h in hashes]})
