"""Request-scoped access to the log's components."""

from __future__ import annotations

from fastapi import Request

from atlas_log_server.context import LogContext


def log_context(request: Request) -> LogContext:
    ctx: LogContext = request.app.state.log
    return ctx
