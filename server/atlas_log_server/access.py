"""Access control: reads are public; submission may require a tenant's bearer token; admin needs its own.

A token is ``atl_<id>_<secret>``; the database keeps only SHA-256 of the secret, its tenant, its scopes and
whether it was revoked. Each tenant has a token-bucket rate (per server process) and an optional daily quota
(shared by every process through one atomic counter per tenant and UTC day). A request over either gets 429
with ``Retry-After``. Token lookups are cached for :data:`CACHE_S` seconds, so a revocation takes effect
within that time. The admin credential is configured as the SHA-256 of the admin token, never the token.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import math
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Request

from atlas_log.files import create_once
from atlas_log_server.db.access import AccessRepository, Grant
from atlas_log_server.errors import Forbidden, RateLimited, ServerError, Unauthorized
from atlas_log_server.rate import TokenBucket

TOKEN_PREFIX = "atl_"  # noqa: S105 - a public prefix, not a secret
SCOPES = frozenset({"submit", "read-disclosures"})
CACHE_S = 5.0
_TOKEN = re.compile(r"atl_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")


@dataclass(frozen=True, slots=True)
class Reader:
    """Who reads confidential data: ``tenant`` (None for the admin), a description for the access record,
    whether it is the admin, whether it is the tenant itself (its submit token) rather than a grant, and the
    artifacts (``alg:hex``) a grant is scoped to (None: the whole tenant)."""

    tenant: str | None
    who: str
    admin: bool
    owner: bool
    artifacts: frozenset[str] | None = None

    def may_read(self, tenant: str | None) -> bool:
        """Whether this reader may read entries submitted by ``tenant`` (None: a log without tenants); a grant
        scoped to artifacts reads only the entries naming one of them, besides."""
        return self.admin or (tenant is not None and tenant == self.tenant)


ADMIN_TOKEN_PREFIX = "atladm_"  # noqa: S105 - a public prefix, not a secret
DEVELOPMENT_ADMIN_TOKEN = "admin.token"  # noqa: S105 - its file name, in a development log's data folder


def new_admin_token() -> tuple[str, str]:
    """``(token text, SHA-256 hex to configure as ATLAS_ADMIN_TOKEN_SHA256)``; the text is never stored."""
    token = ADMIN_TOKEN_PREFIX + base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
    return token, hashlib.sha256(token.encode()).hexdigest()


def development_admin_token(data_dir: Path) -> tuple[Path, str]:
    """A development log's admin token (simulated TDX, no ATLAS_ADMIN_TOKEN_SHA256 set): made once in its data
    folder (mode 0600, beside the log's key), so the admin API works out of the box where nothing is real.
    Returns the file and the SHA-256 hex of the token it holds."""
    path = data_dir / DEVELOPMENT_ADMIN_TOKEN
    data_dir.mkdir(parents=True, exist_ok=True)
    token = create_once(path, (new_admin_token()[0] + "\n").encode()).decode().strip()
    return path, hashlib.sha256(token.encode()).hexdigest()


def new_token() -> tuple[str, str, bytes]:
    """``(id, token text, SHA-256 of the secret)``; the text is shown once and never stored."""
    token_id = os.urandom(8).hex()
    secret = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
    return token_id, f"{TOKEN_PREFIX}{token_id}_{secret}", hashlib.sha256(secret.encode()).digest()


def _unauthorized(detail: str) -> ServerError:
    return Unauthorized("unauthorized", detail)


def _bearer(request: Request, purpose: str) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise _unauthorized(f"this log requires 'Authorization: Bearer <token>' {purpose}")
    return value.strip()


class AccessControl:
    def __init__(
        self,
        repo: AccessRepository,
        *,
        require_tokens: bool,
        admin_token_sha256: str | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.repo = repo
        self.require_tokens = require_tokens
        self.admin_digest = bytes.fromhex(admin_token_sha256) if admin_token_sha256 else None
        self.clock = clock
        self._grants: dict[str, tuple[float, Grant | None, bytes]] = {}
        self._buckets: dict[str, TokenBucket] = {}

    async def _grant(self, token_id: str) -> tuple[Grant | None, bytes]:
        now = self.clock()
        cached = self._grants.get(token_id)
        if cached is not None and now - cached[0] < CACHE_S:
            return cached[1], cached[2]
        found = await self.repo.token(token_id)
        grant, digest = (None, b"") if found is None else found
        if len(self._grants) > 10_000:
            self._grants.clear()
        self._grants[token_id] = (now, grant, digest)
        return grant, digest

    async def _authenticate(self, token: str) -> Grant:
        """The live grant of a bearer token; raises 401 (not a valid token) or 403 (revoked, expired)."""
        match = _TOKEN.fullmatch(token)
        if match is None:
            raise _unauthorized("the bearer token is not an Atlas Log token (atl_<id>_<secret>)")
        grant, digest = await self._grant(match[1])
        if grant is None or not hmac.compare_digest(digest, hashlib.sha256(match[2].encode()).digest()):
            raise _unauthorized("the bearer token is not valid")
        if grant.revoked:
            raise Forbidden("token-revoked", f"token {grant.token_id} was revoked; ask for a new one")
        if grant.expires_at is not None and grant.expires_at <= dt.datetime.now(dt.UTC):
            raise Forbidden("token-expired", f"token {grant.token_id} expired at {grant.expires_at.isoformat()}")
        return grant

    async def authorize_submission(self, request: Request) -> Grant | None:
        """The grant a submission runs under (None when tokens are not required); raises 401/403/429. On a log
        that does not require tokens, a submission that brings one still runs under it (its tenant then owns
        the entry's disclosures)."""
        if not self.require_tokens and not request.headers.get("authorization"):
            return None
        grant = await self._authenticate(_bearer(request, "to submit entries"))
        if "submit" not in grant.scopes:
            held = (
                " (it is a read-disclosures grant: it reads, the tenant's submit token submits)"
                if ("read-disclosures" in grant.scopes)
                else ""
            )
            raise Forbidden("insufficient-scope", f"token {grant.token_id} does not have the 'submit' scope{held}")
        self._take(grant)
        await self._count(grant)
        return grant

    async def disclosure_reader(self, request: Request) -> Reader:
        """Who asks for confidential data: the admin, or a tenant's token (its own submit token, or a
        ``read-disclosures`` grant). Raises 401/403."""
        token = _bearer(request, "to read or erase confidential data")
        if self.admin_digest is not None and hmac.compare_digest(
            hashlib.sha256(token.encode()).digest(), self.admin_digest
        ):
            return Reader(None, "admin", admin=True, owner=True)
        grant = await self._authenticate(token)
        if not grant.scopes & {"submit", "read-disclosures"}:
            raise Forbidden("insufficient-scope", f"token {grant.token_id} may not read confidential data")
        who = f"token {grant.token_id}" + (f" ({grant.holder})" if grant.holder else "")
        return Reader(grant.tenant, who, admin=False, owner="submit" in grant.scopes, artifacts=grant.artifacts)

    def _take(self, grant: Grant) -> None:
        """Token bucket per tenant: ``burst`` requests at once, refilled at ``rate_per_s``."""
        bucket = self._buckets.get(grant.tenant)
        if bucket is None:
            bucket = self._buckets[grant.tenant] = TokenBucket(grant.rate_per_s, grant.burst, self.clock)
        bucket.rate_per_s, bucket.burst = grant.rate_per_s, grant.burst  # the grant may have changed
        wait_s = bucket.take()
        if wait_s:
            wait = math.ceil(wait_s) if math.isfinite(wait_s) else 60
            raise RateLimited(
                "rate-limited",
                f"tenant {grant.tenant} is limited to {grant.rate_per_s:g} submissions/s (burst {grant.burst})",
                retry_after=max(1, wait),
            )

    async def _count(self, grant: Grant) -> None:
        """Reserve one submission of today's quota, atomically across processes."""
        if grant.daily_quota is None:
            return
        if not await self.repo.use_quota(grant.tenant, grant.daily_quota):
            now = dt.datetime.now(dt.UTC)
            midnight = (now + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
            raise RateLimited(
                "quota-exceeded",
                f"tenant {grant.tenant} used its {grant.daily_quota} submissions for today (UTC)",
                retry_after=max(1, int((midnight - now).total_seconds())),
            )

    def require_admin(self, request: Request) -> None:
        """Admin operations need the admin token (configured by its SHA-256)."""
        if self.admin_digest is None:
            raise Forbidden("admin-disabled", "no admin credential is configured (ATLAS_ADMIN_TOKEN_SHA256)")
        token = _bearer(request, "for admin operations")
        if not hmac.compare_digest(hashlib.sha256(token.encode()).digest(), self.admin_digest):
            raise _unauthorized("the admin token is not valid")

    def forget(self, token_id: str) -> None:
        """Drop a cached token (this process sees a revocation at once; others within :data:`CACHE_S`)."""
        self._grants.pop(token_id, None)

    # Administration (the admin routes call these after require_admin).

    async def put_tenant(self, name: str, rate_per_s: float, burst: int, daily_quota: int | None) -> None:
        await self.repo.put_tenant(name, rate_per_s, burst, daily_quota)
        self._buckets.pop(name, None)

    async def tenants(self) -> list[dict[str, Any]]:
        return [
            {
                "name": t.name,
                "ratePerSecond": t.rate_per_s,
                "burst": t.burst,
                "dailyQuota": t.daily_quota,
                "usedToday": t.used_today,
                "tokens": list(t.tokens),
            }
            for t in await self.repo.tenants()
        ]

    async def issue_token(
        self,
        tenant: str,
        scopes: frozenset[str],
        expires_at: dt.datetime | None = None,
        holder: str | None = None,
        artifacts: Sequence[str] | None = None,
    ) -> tuple[str, str] | None:
        """``(id, token text)`` for a new token of ``tenant``; None when the tenant does not exist."""
        token_id, token, digest = new_token()
        if not await self.repo.add_token(token_id, tenant, digest, sorted(scopes), expires_at, holder, artifacts):
            return None
        return token_id, token

    async def revoke(self, token_id: str) -> bool:
        done = await self.repo.revoke(token_id)
        self.forget(token_id)
        return done
