"""The API edge's error mapping: every error becomes RFC 9457 problem+json, each kind of
:class:`~atlas_log_server.errors.ServerError` with its HTTP status; nothing reaches a client as a stack trace."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from atlas_log_server.db.engine import UNAVAILABLE, database_unavailable
from atlas_log_server.errors import (
    PROBLEM_BASE,
    Conflict,
    Forbidden,
    Gone,
    Internal,
    InvalidRequest,
    NotFound,
    RateLimited,
    Rejected,
    RequestTimeout,
    ServerError,
    TooLarge,
    Unauthorized,
    Unavailable,
)

PROBLEM_JSON = "application/problem+json"

STATUS: dict[type[ServerError], int] = {
    InvalidRequest: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    RequestTimeout: 408,
    Conflict: 409,
    Gone: 410,
    TooLarge: 413,
    Rejected: 422,
    RateLimited: 429,
    Internal: 500,
    Unavailable: 503,
}
"""The HTTP status of each kind of error (a subclass takes its nearest listed ancestor's)."""

_log = logging.getLogger(__name__)


def status_of(error: ServerError) -> int:
    """The HTTP status of ``error``'s kind."""
    for kind in type(error).__mro__:
        if kind in STATUS:
            return STATUS[kind]
    return 500


def problem(
    status: int, slug: str, detail: str, *, title: str | None = None, headers: dict[str, str] | None = None
) -> Response:
    """A problem+json answer."""
    body = {
        "type": PROBLEM_BASE + slug,
        "title": title or slug.replace("-", " ").capitalize(),
        "status": status,
        "detail": detail,
    }
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def problem_response(error: ServerError) -> Response:
    """The problem+json answer for ``error``."""
    status = status_of(error)
    headers: dict[str, str] = {}
    if error.retry_after is not None:
        headers["Retry-After"] = str(max(1, error.retry_after))
    if isinstance(error, Unauthorized):
        headers["WWW-Authenticate"] = 'Bearer realm="atlas-log"'
    body = {"type": PROBLEM_BASE + error.slug, "title": error.title, "status": status, "detail": error.detail}
    body.update(error.extra)
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def install_handlers(app: FastAPI) -> None:
    """Map every exception to problem+json."""

    async def on_server_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ServerError)
        if isinstance(exc, Internal):  # the client is told only that the server failed; the log says why
            _log.error("internal error on %s %s: %s", request.method, request.url.path, exc, exc_info=exc)
        return problem_response(exc)

    async def on_validation(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        parts = []
        for err in exc.errors()[:5]:
            if err.get("type") == "json_invalid":  # its location is a byte offset, its message says nothing
                parts.append(f"the request body is not JSON ({err.get('ctx', {}).get('error', 'invalid')})")
                continue
            loc = ".".join(str(x) for x in err.get("loc", ()) if x not in ("query", "path", "body"))
            parts.append(f"{loc or 'request'}: {err.get('msg', 'invalid')}")
        return problem(400, "invalid-request", "; ".join(parts) or "invalid request")

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        slug = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        detail = exc.detail if isinstance(exc.detail, str) else "request failed"
        # The router's own answers name no path: say which, and where the API is described.
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no such path: {request.url.path} (the API is under /api/v1, described at /docs)"
        elif exc.status_code == 405 and detail == "Method Not Allowed":
            detail = f"{request.method} is not allowed on {request.url.path} (see /docs)"
        return problem(exc.status_code, slug, detail, headers=dict(exc.headers or {}))

    async def on_error(request: Request, exc: Exception) -> Response:
        if database_unavailable(exc):
            _log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
            return problem(
                503,
                "database-unavailable",
                "the log's database is not reachable right now; retry later (an entry submitted again is "
                "never logged twice: the log answers with its receipt)",
                headers={"Retry-After": "2"},
            )
        _log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return problem(500, "internal-error", "the server failed to handle this request")

    app.add_exception_handler(ServerError, on_server_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    # The database's errors are handled inside the app, like ServerError: an `Exception` handler runs in
    # Starlette's outermost middleware, which re-raises after answering, so the server would drop the connection.
    for kind in UNAVAILABLE:
        app.add_exception_handler(kind, on_error)
    app.add_exception_handler(Exception, on_error)
