"""C2SP tlog-tiles read API: the checkpoint, hash tiles and entry bundles."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from atlas_log.errors import FormatError
from atlas_log.merkle import HASH_SIZE
from atlas_log.tiles import TILE_WIDTH, encode_entry_bundle, parse_tile_path, tile_width
from atlas_log_server.api.deps import log_context
from atlas_log_server.api.schemas import answers
from atlas_log_server.context import LogContext
from atlas_log_server.errors import NotFound, Unavailable

router = APIRouter(tags=["tiles"])
Ctx = Annotated[LogContext, Depends(log_context)]

IMMUTABLE = "public, max-age=31536000, immutable"
PARTIAL = "public, max-age=86400"  # a .p/W tile never changes either, but may be deleted once full


@router.get(
    "/checkpoint",
    summary="The latest signed checkpoint (C2SP signed note)",
    response_class=Response,
    responses=answers(None, media_type="text/plain; charset=utf-8", description="the signed note"),
)
async def checkpoint(ctx: Ctx) -> Response:
    note: bytes | None
    if ctx.settings.witnesses:  # a witnessed log serves what its witnesses cosigned
        published = await ctx.repo.latest_published()
        note = None if published is None else published[1]
    else:
        state = await ctx.repo.state()
        note = state.frozen_note or state.checkpoint
    if note is None:
        raise Unavailable("no-checkpoint", "no checkpoint has been published yet", retry_after=1)
    return Response(note, media_type="text/plain; charset=utf-8", headers={"Cache-Control": "no-cache, max-age=0"})


@router.get(
    "/tile/{path:path}",
    summary="A hash tile or entry bundle (tlog-tiles paths)",
    response_class=Response,
    responses=answers(None, 404, media_type="application/octet-stream", description="the tile's bytes"),
)
async def tile(path: str, ctx: Ctx) -> Response:
    try:
        addr = parse_tile_path("tile/" + path)
    except FormatError as exc:
        raise NotFound("invalid-tile-path", str(exc)) from exc
    size = (await ctx.repo.state()).size
    level = 0 if addr.level is None else addr.level
    available = tile_width(level, addr.index, size)
    if available < addr.width:
        raise NotFound("tile-not-found", f"{addr.path()} does not exist at tree size {size}")
    cache = IMMUTABLE if addr.width == TILE_WIDTH else PARTIAL
    if addr.level is None:
        leaves = await ctx.repo.leaves(addr.index * TILE_WIDTH, addr.width)
        if len(leaves) != addr.width:
            raise Unavailable("not-ready", "entries are not readable yet", retry_after=1)
        body = encode_entry_bundle(leaves)
    else:
        data = (await ctx.repo.tiles([(addr.level, addr.index)])).get((addr.level, addr.index), b"")
        if len(data) < addr.width * HASH_SIZE:
            raise Unavailable("not-ready", "tile is not readable yet", retry_after=1)
        body = data[: addr.width * HASH_SIZE]
    return Response(body, media_type="application/octet-stream", headers={"Cache-Control": cache})
