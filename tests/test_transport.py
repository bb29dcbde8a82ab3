"""The transport: what is retried (connection failures, 503, 429), how long (Retry-After, backoff, deadline),
what is not, and the typed errors it raises."""

from __future__ import annotations

import asyncio
import inspect
import time

import httpx
import pytest

from atlas_log.client import AsyncLogClient, LogClient
from atlas_log.errors import LogTimeoutError, LogUnreachableError
from atlas_log.transport import DEFAULT_RETRY, NO_RETRY, Request, RetryPolicy, asend, retry_after, send

FAST = RetryPolicy(deadline_s=5, base_delay_s=0.01, max_delay_s=0.05)


class Flaky:
    """Fails the first ``failures`` requests with ``failure`` (an exception, or a status with headers)."""

    def __init__(self, failures: int, failure: Exception | tuple[int, dict[str, str]]) -> None:
        self.failures, self.failure = failures, failure
        self.bodies: list[bytes] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(request.content)
        if len(self.bodies) <= self.failures:
            if isinstance(self.failure, Exception):
                raise self.failure
            status, headers = self.failure
            return httpx.Response(status, headers=headers, json={"type": "busy"})
        return httpx.Response(201, json={"ok": True})


def _client(handler: Flaky) -> httpx.Client:
    return httpx.Client(base_url="http://log", transport=httpx.MockTransport(handler))


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ConnectError("refused"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.ReadError("Connection reset by peer"),
        (503, {"Retry-After": "0"}),
        (429, {}),
    ],
)
def test_what_is_safe_to_retry_is_retried_with_the_same_bytes(failure: Exception | tuple[int, dict[str, str]]) -> None:
    handler = Flaky(3, failure)
    request = Request.post_json("/api/v1/entries", {"dsseEnvelope": {"payload": "é"}})
    reply = send(_client(handler), request, FAST)
    assert reply.status == 201 and len(handler.bodies) == 4
    assert set(handler.bodies) == {request.body}  # the log deduplicates identical bytes


@pytest.mark.parametrize("status", [400, 404, 409, 500, 502])
def test_other_answers_are_returned_at_once(status: int) -> None:
    handler = Flaky(1, (status, {"Retry-After": "0"}))
    assert send(_client(handler), Request.get("/checkpoint"), FAST).status == status
    assert len(handler.bodies) == 1


def test_a_timeout_is_not_retried_and_is_typed() -> None:
    handler = Flaky(5, httpx.ReadTimeout("timed out"))
    with pytest.raises(LogTimeoutError, match=r"GET http://log/checkpoint: the log did not answer in time"):
        send(_client(handler), Request.get("/checkpoint"), FAST)
    assert len(handler.bodies) == 1


def test_the_deadline_ends_retrying_with_an_error_naming_the_url() -> None:
    handler = Flaky(10_000, httpx.ConnectError("refused"))
    started = time.monotonic()
    with pytest.raises(LogUnreachableError, match=r"cannot reach the log at http://log/checkpoint\?a=1: refused"):
        send(_client(handler), Request.get("/checkpoint", a=1), RetryPolicy(deadline_s=0.3, base_delay_s=0.01))
    assert time.monotonic() - started < 1.5 and len(handler.bodies) > 2
    handler = Flaky(1, httpx.ConnectError("refused"))
    with pytest.raises(LogUnreachableError):
        send(_client(handler), Request.get("/checkpoint"), NO_RETRY)
    assert len(handler.bodies) == 1


def test_retry_after_is_honoured_and_a_wait_beyond_the_deadline_is_not_started() -> None:
    handler = Flaky(1, (503, {"Retry-After": "1"}))
    started = time.monotonic()
    assert send(_client(handler), Request.get("/checkpoint"), FAST).status == 201
    assert time.monotonic() - started >= 1.0
    handler = Flaky(1, (503, {"Retry-After": "60"}))
    started = time.monotonic()
    assert send(_client(handler), Request.get("/checkpoint"), FAST).status == 503  # the caller's error to raise
    assert time.monotonic() - started < 1.0 and len(handler.bodies) == 1


def test_the_async_transport_retries_alike() -> None:
    handler = Flaky(2, httpx.ConnectError("refused"))

    async def run() -> int:
        async with httpx.AsyncClient(base_url="http://log", transport=httpx.MockTransport(handler)) as http:
            return (await asend(http, Request.get("/checkpoint"), FAST)).status

    assert asyncio.run(run()) == 201 and len(handler.bodies) == 3


def test_backoff_grows_is_jittered_and_bounded() -> None:
    policy = RetryPolicy(deadline_s=60, base_delay_s=0.1, max_delay_s=2)
    assert [policy.delay(n, None, 0.0) for n in range(6)] == [0.05, 0.1, 0.2, 0.4, 0.8, 1.0]
    assert all(policy.delay(n, None, 0.999) < 2 for n in range(100))
    assert policy.delay(0, 3.0, 0.0) == 3.0 and 3.0 < policy.delay(0, 3.0, 0.5) <= 3.3
    with pytest.raises(ValueError):
        RetryPolicy(base_delay_s=0)


def test_retry_after_forms() -> None:
    assert retry_after({"retry-after": "5"}) == 5.0
    assert retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, now=1445412470.0) == 10.0
    assert retry_after({"retry-after": "soon"}) is None and retry_after({}) is None


def test_the_default_policy_is_the_documented_one() -> None:
    """The README promises a 30 s overall deadline by default, with waits that start small and stay bounded."""
    assert DEFAULT_RETRY.deadline_s == 30
    assert 0 < DEFAULT_RETRY.base_delay_s <= DEFAULT_RETRY.max_delay_s <= DEFAULT_RETRY.deadline_s
    for client in (LogClient, AsyncLogClient):
        assert inspect.signature(client).parameters["retry"].default is DEFAULT_RETRY
