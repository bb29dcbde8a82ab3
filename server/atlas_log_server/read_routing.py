"""Read requests to the read replicas, everything else to the primary.

A GET of the read API (proofs, tiles, entries, histories, lineage, search, evidence, the checkpoint) is served
from one replica answering now, pinned for the whole request. It is served again from the primary, and says so
in ``X-Atlas-Read``, when the replica cannot answer it: the replica is behind what was asked (an entry, a tile
or a tree size it does not hold yet: its answer is a 404, a 400 or a 503), or it failed (the replica is then
taken out of rotation). A replica's answer names the checkpoint it holds, so a lagging replica answers
consistently with its own, older checkpoint. Disclosures, access control and administration never leave the
primary.
"""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from atlas_log_server.db.replicas import Replicas, pinned

__all__ = ["READ_HEADER", "ReadRouting"]

_log = logging.getLogger(__name__)
READ_HEADER = b"x-atlas-read"
_READ_PREFIXES = (
    "/checkpoint",
    "/tile/",
    "/api/v1/entries",
    "/api/v1/submissions",
    "/api/v1/proofs/",
    "/api/v1/artifacts/",
    "/api/v1/search",
    "/api/v1/collateral/",
)
_PRIMARY_ONLY = ("/disclosures",)  # erasure must be seen at once; reads of them are recorded
_RETRY_ON_PRIMARY = {400, 404, 500, 503}


def _is_read(scope: Scope) -> bool:
    if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
        return False
    path: str = scope["path"]
    return path.startswith(_READ_PREFIXES) and not path.endswith(_PRIMARY_ONLY)


class ReadRouting:
    """ASGI middleware: see the module docstring. ``replicas`` is looked up on the app's state at each request
    (None: no replicas configured, everything on the primary)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        replicas: Replicas | None = getattr(scope["app"].state, "replicas", None) if "app" in scope else None
        if replicas is None or not _is_read(scope):
            await self.app(scope, receive, send)
            return
        pool = replicas.pick()
        if pool is None:
            await self.app(scope, receive, _tagged(send, b"primary; no replica is answering"))
            return
        # The replica's answer is held until its status shows it can stand (or must be asked of the primary).
        held: list[Message] = []

        async def hold(message: Message) -> None:
            held.append(message)

        why = None
        try:
            with pinned(pool):
                await self.app(scope, receive, hold)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            replicas.down(pool)
            why = f"primary; the replica failed ({type(exc).__name__})"
        else:
            status = next((m["status"] for m in held if m["type"] == "http.response.start"), 500)
            if status >= 500:
                replicas.down(pool)
            if status in _RETRY_ON_PRIMARY:
                why = f"primary; the replica answered {status} (behind, or failing)"
        if why is None:
            tagged = _tagged(send, b"replica")
            for message in held:
                await tagged(message)
            return
        await self.app(scope, receive, _tagged(send, why.encode()))


def _tagged(send: Send, where: bytes) -> Send:
    """``send`` with the ``X-Atlas-Read`` header added to the response's start."""

    async def tag(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers: list[Any] = [*message.get("headers", []), (READ_HEADER, where)]
            message = {**message, "headers": headers}
        await send(message)

    return tag
