"""The server's one exception family: what domain code (admission, gate, access, sequencer, signer, storage)
raises when a request cannot be served.

Each error names its kind by class, a stable problem ``slug`` (the ``type`` of the problem+json answer is
``PROBLEM_BASE + slug``), a ``detail`` that tells the user what to fix, and where retrying helps, how long to
wait. Which HTTP status a kind gets is decided only at the API edge (:mod:`atlas_log_server.api.problems`);
nothing here knows about HTTP or the database.
"""

from __future__ import annotations

from typing import Any

PROBLEM_BASE = "https://atlas-log.dev/problems/"

__all__ = [
    "PROBLEM_BASE",
    "Conflict",
    "Forbidden",
    "Gone",
    "Internal",
    "InvalidRequest",
    "NotFound",
    "RateLimited",
    "Rejected",
    "RequestTimeout",
    "ServerError",
    "TooLarge",
    "Unauthorized",
    "Unavailable",
]


class ServerError(Exception):
    """Base of the family. ``retry_after`` (seconds) says when retrying may succeed; ``extra`` holds members
    the answer carries beside the standard ones (evidence, such as a frozen log's final checkpoint)."""

    def __init__(
        self,
        slug: str,
        detail: str,
        *,
        title: str | None = None,
        retry_after: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.slug = slug
        self.detail = detail
        self.title = title or slug.replace("-", " ").capitalize()
        self.retry_after = retry_after
        self.extra = extra or {}


class InvalidRequest(ServerError):
    """The request is malformed: fix it before sending it again."""


class Unauthorized(ServerError):
    """The request lacks valid credentials."""


class Forbidden(ServerError):
    """The credentials do not allow this request."""


class NotFound(ServerError):
    """What the request names does not exist (yet)."""


class RequestTimeout(ServerError):
    """The request was not received in time."""


class Conflict(ServerError):
    """The request contradicts what the log already holds."""


class Gone(ServerError):
    """The log no longer accepts this request, for good."""


class TooLarge(ServerError):
    """The request, or what it would make, exceeds a size limit."""


class Rejected(ServerError):
    """Well formed, but refused by the log's policy (an untrusted chain, a quote that does not verify)."""


class RateLimited(ServerError):
    """The caller's rate or quota is spent; ``retry_after`` says when it refills."""


class Unavailable(ServerError):
    """The log cannot serve this now (overload, collateral, signer, database); retrying later may succeed."""


class Internal(ServerError):
    """The log's own data is broken (stored evidence missing, storage inconsistent): not the caller's fault."""
