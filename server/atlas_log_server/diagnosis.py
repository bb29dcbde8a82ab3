"""What an operator reads when a command, or the server's start, fails: one line naming the cause.

Most such failures are the operator's to fix (a setting, a file, a port, a database that does not answer), and a
traceback hides the one sentence that matters. :func:`explain` turns those into that sentence; anything else is
a bug, reported with its traceback. A failed server start is reported the same way, in the log
(:class:`StartupFailureReport`).
"""

from __future__ import annotations

import logging
import sys

from alembic.util.exc import CommandError
from asyncpg import PostgresError
from pydantic import ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from atlas_log.errors import Error
from atlas_log_server.errors import ServerError

_log = logging.getLogger(__name__)


class OperatorError(Exception):
    """A failure whose message already says what the operator must change (raised where the cause is known)."""


def one_line(text: str) -> str:
    """``text`` with its line breaks and runs of spaces as single spaces."""
    return " ".join(text.split())


def _settings(exc: ValidationError) -> str:
    # Settings come from ATLAS_* variables: name the variable, and not the value (it may be a secret).
    said = []
    for err in exc.errors(include_url=False, include_input=False):
        message = err["msg"].removeprefix("Value error, ")
        said.append(f"ATLAS_{str(err['loc'][0]).upper()}: {message}" if err["loc"] else message)
    return "invalid setting: " + one_line("; ".join(said))


def explain(exc: BaseException) -> str | None:
    """The one line that tells an operator what went wrong, or ``None`` when ``exc`` is not theirs to fix."""
    if isinstance(exc, ValidationError):
        return _settings(exc)
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    # Formats (a damaged key file), refusals (a key for another log), the database's answers, Alembic's (an
    # unknown revision), files and settings that do not parse.
    if isinstance(exc, OperatorError | Error | ServerError | PostgresError | CommandError | OSError | ValueError):
        return one_line(str(exc)) or type(exc).__name__
    return None


class StartupFailureReport:
    """Reports a failed start (an exception in the app's lifespan) in one log line, as :func:`explain` says it.

    Starlette hands uvicorn the whole traceback of a failed start, and uvicorn logs it as the message; this
    replaces that message with nothing (uvicorn then only says "Application startup failed. Exiting.") after
    logging the explanation itself. A failure that is not the operator's keeps its traceback, in the log line.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def reporting_send(message: Message) -> None:
            # Starlette sends the failure from the block that handles the exception: it is the one in flight.
            exc = sys.exc_info()[1]
            if message["type"] == "lifespan.startup.failed" and isinstance(exc, Exception):
                said = explain(exc)
                if said is not None:
                    _log.error("cannot start: %s", said)
                else:
                    _log.error("cannot start: %s: %s", type(exc).__name__, exc, exc_info=exc)
                message = {**message, "message": ""}
            await send(message)

        await self.app(scope, receive, reporting_send)
