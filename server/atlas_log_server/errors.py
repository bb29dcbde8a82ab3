"""RFC 9457 problem details: every error the API returns, each with a stable ``type`` URI."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from atlas_log_server.db.engine import UNAVAILABLE, database_unavailable

PROBLEM_BASE = "https://atlas-log.dev/problems/"
PROBLEM_JSON = "application/problem+json"

_log = logging.getLogger(__name__)


class Problem(Exception):
    """An error with an HTTP status and a stable problem type (``PROBLEM_BASE + slug``)."""

    def __init__(
        self,
        status: int,
        slug: str,
        detail: str,
        *,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.detail = detail
        self.title = title or slug.replace("-", " ").capitalize()
        self.headers = headers or {}
        self.extra = extra or {}

    def response(self) -> Response:
        body = {"type": PROBLEM_BASE + self.slug, "title": self.title, "status": self.status, "detail": self.detail}
        body.update(self.extra)
        return JSONResponse(body, status_code=self.status, headers=self.headers, media_type=PROBLEM_JSON)


def bad_request(slug: str, detail: str) -> Problem:
    return Problem(400, slug, detail)


def not_found(slug: str, detail: str) -> Problem:
    return Problem(404, slug, detail)


def install_handlers(app: FastAPI) -> None:
    """Map every exception to problem+json; nothing reaches the client as a stack trace."""

    async def on_problem(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, Problem)
        return exc.response()

    async def on_validation(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        parts = []
        for err in exc.errors()[:5]:
            loc = ".".join(str(x) for x in err.get("loc", ()) if x not in ("query", "path", "body"))
            parts.append(f"{loc or 'request'}: {err.get('msg', 'invalid')}")
        return Problem(400, "invalid-request", "; ".join(parts) or "invalid request").response()

    async def on_http(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        slug = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        detail = exc.detail if isinstance(exc.detail, str) else "request failed"
        return Problem(exc.status_code, slug, detail, headers=dict(exc.headers or {})).response()

    async def on_error(request: Request, exc: Exception) -> Response:
        if database_unavailable(exc):
            _log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
            return Problem(
                503,
                "database-unavailable",
                "the log's database is not reachable right now; retry later (an entry submitted again is "
                "never logged twice: the log answers with its receipt)",
                headers={"Retry-After": "2"},
            ).response()
        _log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return Problem(500, "internal-error", "the server failed to handle this request").response()

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    # The database's errors are handled inside the app, like Problem: an `Exception` handler runs in Starlette's
    # outermost middleware, which re-raises after answering, so the server would drop the client's connection.
    for kind in UNAVAILABLE:
        app.add_exception_handler(kind, on_error)
    app.add_exception_handler(Exception, on_error)
