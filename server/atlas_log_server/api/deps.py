"""Request-scoped access to the log's components."""

from __future__ import annotations

from fastapi import Request

from atlas_log_server.context import LogContext


async def log_context(request: Request) -> LogContext:
    # A coroutine, so FastAPI calls it inline: a plain function would be sent to a worker thread on every
    # request.
    ctx: LogContext = request.app.state.log
    return ctx
