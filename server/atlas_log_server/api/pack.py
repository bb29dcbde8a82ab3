"""An artifact's evidence pack for download (the explorer's button). It is built by the one pack builder,
:func:`atlas_log.pack.gather`, reading this log over HTTP as any client does, so it is the pack
``atlas-log pack`` writes; whoever downloads it re-verifies it offline with their own key
(``atlas-log verify-pack``). One pack is built at a time: building one reads every entry it names."""

from __future__ import annotations

import asyncio
import functools
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from atlas_log.client import LogClient
from atlas_log.errors import Error
from atlas_log.pack import gather
from atlas_log_server.api.artifacts import parse_artifact
from atlas_log_server.api.deps import log_context
from atlas_log_server.api.schemas import answers
from atlas_log_server.context import LogContext
from atlas_log_server.errors import Unavailable

router = APIRouter(prefix="/api/v1/artifacts", tags=["artifacts"])
Ctx = Annotated[LogContext, Depends(log_context)]


@functools.cache
def _one_at_a_time() -> asyncio.Lock:
    return asyncio.Lock()


def _build(url: str, vkey: str, digest: str, depth: int) -> bytes:
    with LogClient(url, vkey, timeout_s=60) as client:
        return gather(client, digest, depth=depth)


@router.get(
    "/{artifact}/pack",
    summary="The artifact's evidence pack (a ZIP archive to verify offline with atlas-log verify-pack)",
    response_model=None,
    response_class=Response,
    responses=answers(None, 400, 503, media_type="application/zip", description="the pack"),
)
async def pack(artifact: str, request: Request, ctx: Ctx, depth: Annotated[int, Query(ge=1, le=10)] = 5) -> Response:
    digest = parse_artifact(artifact)
    lock = _one_at_a_time()
    if lock.locked():
        raise Unavailable("pack-busy", "another evidence pack is being built; try again in a moment")
    async with lock:
        host, port = request.scope.get("server") or ("127.0.0.1", 8080)
        # A server listening on every interface is reached on its loopback one.
        host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104
        url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
        try:
            data = await asyncio.to_thread(_build, url, ctx.verifier.vkey, digest, depth)
        except Error as exc:
            raise Unavailable("pack-failed", f"the evidence pack could not be built: {exc}") from exc
    name = digest.replace(":", "-")[:24]
    return Response(
        data,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="atlas-log-pack-{name}.zip"'},
    )
