"""Dynamic inclusion and consistency proofs, computed from tiles."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from atlas_log._encoding import b64encode
from atlas_log_server.api.deps import log_context
from atlas_log_server.context import LogContext
from atlas_log_server.errors import bad_request, not_found

router = APIRouter(prefix="/api/v1/proofs", tags=["proofs"])
Ctx = Annotated[LogContext, Depends(log_context)]
NonNegative = Annotated[int, Query(ge=0, le=(1 << 63) - 1)]


@router.get("/inclusion", summary="Inclusion proof of the leaf at `index` in the tree of `treeSize` leaves")
async def inclusion(
    ctx: Ctx, index: NonNegative, tree_size: Annotated[int, Query(alias="treeSize", ge=1, le=(1 << 63) - 1)]
) -> dict[str, Any]:
    if index >= tree_size:
        raise bad_request("index-out-of-range", f"index {index} must be smaller than treeSize {tree_size}")
    state = await ctx.repo.state()
    if tree_size > state.size:
        raise bad_request("tree-size-too-large", f"treeSize {tree_size} exceeds the log's size {state.size}")
    hashes = await ctx.proofs.inclusion(index, tree_size)
    leaf = await ctx.repo.entry_by_index(index)
    if leaf is None:
        raise not_found("entry-not-found", f"no entry at index {index}")
    return {
        "logIndex": index,
        "treeSize": tree_size,
        "leafHash": b64encode(leaf.leaf_hash),
        "hashes": [b64encode(h) for h in hashes],
    }


@router.get("/consistency", summary="Consistency proof between the trees of `from` and `to` leaves")
async def consistency(
    ctx: Ctx,
    first: Annotated[int, Query(alias="from", ge=1, le=(1 << 63) - 1)],
    second: Annotated[int, Query(alias="to", ge=1, le=(1 << 63) - 1)],
) -> dict[str, Any]:
    if first > second:
        raise bad_request("invalid-range", f"from ({first}) must not exceed to ({second})")
    state = await ctx.repo.state()
    if second > state.size:
        raise bad_request("tree-size-too-large", f"to ({second}) exceeds the log's size {state.size}")
    hashes = await ctx.proofs.consistency(first, second)
    return {"from": first, "to": second, "hashes": [b64encode(h) for h in hashes]}
