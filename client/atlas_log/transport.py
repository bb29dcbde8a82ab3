"""Sending one request to a log, retrying what is safe to retry: the only place the client touches httpx.

A :class:`Request` is a plain description (method, path, query, exact body bytes); :func:`send` and
:func:`asend` carry it over an ``httpx.Client`` / ``httpx.AsyncClient`` and return a :class:`Reply`. Both follow
one :class:`RetryPolicy`, decided in one place (:class:`_Attempts`):

* retried: connection failures (refused, reset, closed before an answer), and answers ``503`` and ``429``, the
  log's own words for "later" (``Retry-After`` honoured: never sooner than it says);
* not retried: timeouts once connected (the log is alive and may still be working on it), and every other
  answer, which is returned as it is for the caller to check;
* waits grow exponentially with jitter, and no wait starts that would end after the policy's overall deadline.

Resending a submission is safe because its bytes are identical and the log deduplicates: a repeat is answered
with the existing entry's receipt. Failures become the client's typed errors
(:class:`~atlas_log.errors.LogUnreachableError`, :class:`~atlas_log.errors.LogTimeoutError`), naming the URL.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from atlas_log.errors import Error, LogAPIError, LogTimeoutError, LogUnreachableError

__all__ = [
    "DEFAULT_RETRY",
    "DEFAULT_TIMEOUT_S",
    "NO_RETRY",
    "RETRIED_STATUSES",
    "Reply",
    "Request",
    "RetryPolicy",
    "asend",
    "post_json",
    "retry_after",
    "send",
]

DEFAULT_TIMEOUT_S = 30.0
RETRIED_STATUSES = frozenset({429, 503})
# A connection that failed before the log answered: nothing was done, or (a submission) done once and deduplicated.
_RETRIED_ERRORS = (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How long a request keeps being retried.

    ``deadline_s`` bounds the whole request, retries and waits included; waits start at ``base_delay_s``,
    double per attempt up to ``max_delay_s``, and are jittered so that many clients do not return at once.
    """

    deadline_s: float = 30.0
    base_delay_s: float = 0.2
    max_delay_s: float = 5.0

    def __post_init__(self) -> None:
        if self.deadline_s < 0 or self.base_delay_s <= 0 or self.max_delay_s < self.base_delay_s:
            raise ValueError("a retry policy needs deadline_s >= 0 and 0 < base_delay_s <= max_delay_s")

    def delay(self, attempt: int, retry_after_s: float | None, u: float) -> float:
        """The wait before retry number ``attempt`` (0 for the first), given the log's ``Retry-After`` (if any)
        and a uniform random ``u`` in [0, 1): half the exponential backoff plus up to half of it again, and
        never less than ``Retry-After`` (plus up to a tenth of it, so clients told the same moment spread out)."""
        backoff = min(self.max_delay_s, self.base_delay_s * 2.0 ** min(attempt, 32))
        jittered = backoff * (0.5 + u / 2)
        if retry_after_s is None:
            return jittered
        return max(jittered, retry_after_s * (1 + u / 10))


DEFAULT_RETRY = RetryPolicy()
NO_RETRY = RetryPolicy(deadline_s=0)


@dataclass(frozen=True, slots=True)
class Request:
    """One request to a log: ``path`` below the log's URL, ``body`` the exact bytes sent (JSON) on every attempt."""

    method: str
    path: str
    params: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None

    @classmethod
    def get(cls, path: str, **params: int | str | None) -> Request:
        return cls("GET", path, tuple((k, str(v)) for k, v in params.items() if v is not None))

    @classmethod
    def post_json(cls, path: str, obj: Any, **params: int | str | None) -> Request:
        # Serialised once, so that every retry sends the same bytes.
        body = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
        return cls("POST", path, tuple((k, str(v)) for k, v in params.items() if v is not None), body)


@dataclass(frozen=True, slots=True)
class Reply:
    """The log's answer: status, headers (names in lower case), body, and the URL that answered."""

    method: str
    url: str
    status: int
    content: bytes
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def media_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()


def retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds the ``Retry-After`` header asks to wait (RFC 9110 §10.2.3: seconds or an HTTP date), or None."""
    value = headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


class _Attempts:
    """The retry decision for one request, shared by the sync and async drivers."""

    def __init__(self, policy: RetryPolicy, clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy
        self.clock = clock
        self.started = clock()
        self.count = 0

    def wait(self, reply: Reply | None, error: Exception | None) -> float | None:
        """Seconds to wait before trying again, or None: stop here (return ``reply`` or raise ``error``)."""
        if error is not None:
            if not isinstance(error, _RETRIED_ERRORS):
                return None
            hint = None
        else:
            assert reply is not None
            if reply.status not in RETRIED_STATUSES:
                return None
            hint = retry_after(reply.headers)
        delay = self.policy.delay(self.count, hint, random.random())
        if self.clock() - self.started + delay > self.policy.deadline_s:
            return None
        self.count += 1
        return delay


def _build(http: httpx.Client | httpx.AsyncClient, base: str | None, request: Request) -> httpx.Request:
    target = base.rstrip("/") + request.path if base else request.path  # else relative to http's base URL
    headers = {"Content-Type": "application/json"} if request.body is not None else None
    try:
        return http.build_request(request.method, target, params=request.params, content=request.body, headers=headers)
    except (httpx.InvalidURL, httpx.HTTPError, ValueError) as exc:
        raise LogUnreachableError(f"{base or http.base_url} is not a URL a log can be reached at: {exc}") from exc


def _reply(request: Request, resp: httpx.Response) -> Reply:
    headers = {k.lower(): v for k, v in resp.headers.items()}
    return Reply(request.method, str(resp.request.url), resp.status_code, resp.content, headers)


def _failure(request: Request, url: str, exc: Exception, attempts: _Attempts) -> LogAPIError:
    reason = str(exc) or type(exc).__name__
    if attempts.count:  # the time a caller waited, explained
        reason += f"; tried {attempts.count + 1} times over {attempts.clock() - attempts.started:.0f} s"
    if isinstance(exc, httpx.UnsupportedProtocol):
        return LogUnreachableError(f"{url} is not a URL a log can be reached at: {reason}")
    if isinstance(exc, httpx.TimeoutException):
        return LogTimeoutError(f"{request.method} {url}: the log did not answer in time ({reason})")
    return LogUnreachableError(f"cannot reach the log at {url}: {reason}")


def send(
    http: httpx.Client, request: Request, policy: RetryPolicy = DEFAULT_RETRY, base_url: str | None = None
) -> Reply:
    """Send ``request`` to the log at ``base_url`` (default: ``http``'s base URL) under ``policy``.

    Returns the first answer not to retry (any status); raises :class:`~atlas_log.errors.LogUnreachableError`
    or :class:`~atlas_log.errors.LogTimeoutError` when no answer came before the deadline."""
    attempts = _Attempts(policy)
    while True:
        built = _build(http, base_url, request)
        reply, error = None, None
        try:
            reply = _reply(request, http.send(built))
        except httpx.HTTPError as exc:
            error = exc
        wait = attempts.wait(reply, error)
        if wait is None:
            if error is not None:
                raise _failure(request, str(built.url), error, attempts) from error
            assert reply is not None
            return reply
        time.sleep(wait)


async def asend(
    http: httpx.AsyncClient, request: Request, policy: RetryPolicy = DEFAULT_RETRY, base_url: str | None = None
) -> Reply:
    """The asynchronous twin of :func:`send`."""
    attempts = _Attempts(policy)
    while True:
        built = _build(http, base_url, request)
        reply, error = None, None
        try:
            reply = _reply(request, await http.send(built))
        except httpx.HTTPError as exc:
            error = exc
        wait = attempts.wait(reply, error)
        if wait is None:
            if error is not None:
                raise _failure(request, str(built.url), error, attempts) from error
            assert reply is not None
            return reply
        await asyncio.sleep(wait)


def post_json(url: str, obj: Any, timeout_s: float = 10.0) -> int:
    """POST ``obj`` as JSON to ``url`` once (a webhook), returning the status; raises
    :class:`~atlas_log.errors.Error` when the request fails or the receiver answers an error."""
    with httpx.Client(timeout=timeout_s) as http:
        try:
            resp = http.post(url, json=obj)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise Error(f"POST {url}: {str(exc) or type(exc).__name__}") from exc
    if resp.status_code >= 400:
        raise Error(f"POST {url}: {resp.status_code} {resp.reason_phrase}")
    return resp.status_code
