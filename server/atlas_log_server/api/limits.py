"""Request body limits, enforced before the body reaches a handler: a size cap (413) and a deadline for
receiving the whole body (408), so a client that sends slowly cannot hold a worker's request open."""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from atlas_log_server.api.problems import problem_response
from atlas_log_server.errors import RequestTimeout, ServerError, TooLarge


class _TooLarge(Exception):
    pass


class _TooSlow(Exception):
    pass


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    def _problem(self) -> ServerError:
        return TooLarge("body-too-large", f"request body exceeds {self.max_bytes} bytes")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.max_bytes
                except ValueError:
                    too_big = False
                if too_big:
                    await problem_response(self._problem())(scope, receive, send)
                    return
        seen = 0
        started = False
        deadline = asyncio.get_running_loop().time() + self.timeout_s

        body_done = False

        async def limited_receive() -> Message:
            nonlocal seen, body_done
            if body_done:  # the deadline covers the body only, not a later wait for the client to disconnect
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - asyncio.get_running_loop().time()))
            except TimeoutError:
                raise _TooSlow from None
            body_done = message["type"] != "http.request" or not message.get("more_body", False)
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await problem_response(self._problem())(scope, receive, send)
        except _TooSlow:
            if not started:
                slow = RequestTimeout("request-timeout", f"the request body did not arrive within {self.timeout_s:g} s")
                await problem_response(slow)(scope, receive, send)
