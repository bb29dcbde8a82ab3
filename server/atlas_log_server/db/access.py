"""The access aggregate's SQL: tenants (rate and daily quota), their tokens, and each tenant's daily usage."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg


@dataclass(frozen=True, slots=True)
class Grant:
    """What a token allows: its tenant, scopes and the tenant's limits; ``revoked`` once it was revoked."""

    token_id: str
    tenant: str
    scopes: frozenset[str]
    rate_per_s: float
    burst: int
    daily_quota: int | None
    revoked: bool
    expires_at: dt.datetime | None = None  # a grant to read disclosures ends then
    holder: str | None = None  # whom a grant was issued to (an auditor, a regulator)
    artifacts: frozenset[str] | None = None  # a grant scoped to entries naming these digests (alg:hex)


@dataclass(frozen=True, slots=True)
class TenantUsage:
    """A tenant's limits, how much of today's quota (UTC) it used, and its live (unrevoked) token IDs."""

    name: str
    rate_per_s: float
    burst: int
    daily_quota: int | None
    used_today: int
    tokens: tuple[str, ...]


class AccessRepository:
    """Tenants, tokens (only the SHA-256 of each secret) and usage counters."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def token(self, token_id: str) -> tuple[Grant, bytes] | None:
        """The grant of token ``token_id`` and the SHA-256 of its secret, if the token exists."""
        row = await self.pool.fetchrow(
            "SELECT t.id, t.tenant, t.secret_sha256, t.scopes, t.revoked_at IS NOT NULL AS revoked, t.expires_at, "
            "t.holder, t.artifacts, n.rate_per_s, n.burst, n.daily_quota "
            "FROM tokens t JOIN tenants n ON n.name = t.tenant WHERE t.id = $1",
            token_id,
        )
        if row is None:
            return None
        grant = Grant(
            row["id"],
            row["tenant"],
            frozenset(row["scopes"]),
            row["rate_per_s"],
            row["burst"],
            row["daily_quota"],
            row["revoked"],
            row["expires_at"],
            row["holder"],
            None if row["artifacts"] is None else frozenset(row["artifacts"]),
        )
        return grant, bytes(row["secret_sha256"])

    async def use_quota(self, tenant: str, daily_quota: int) -> bool:
        """Count one submission against ``tenant``'s quota for today (UTC) unless it is spent: one atomic
        counter per tenant and day, shared by every process. Returns whether it was counted."""
        used = await self.pool.fetchval(
            "INSERT INTO tenant_usage (tenant, day, used) VALUES ($1, (now() AT TIME ZONE 'utc')::date, 1) "
            "ON CONFLICT (tenant, day) DO UPDATE SET used = tenant_usage.used + 1 WHERE tenant_usage.used < $2 "
            "RETURNING used",
            tenant,
            daily_quota,
        )
        return used is not None

    async def put_tenant(self, name: str, rate_per_s: float, burst: int, daily_quota: int | None) -> None:
        """Create tenant ``name`` or replace its limits."""
        await self.pool.execute(
            "INSERT INTO tenants (name, rate_per_s, burst, daily_quota) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (name) DO UPDATE SET rate_per_s = $2, burst = $3, daily_quota = $4",
            name,
            rate_per_s,
            burst,
            daily_quota,
        )

    async def tenants(self) -> list[TenantUsage]:
        """Every tenant, by name."""
        rows = await self.pool.fetch(
            "SELECT n.name, n.rate_per_s, n.burst, n.daily_quota, coalesce(u.used, 0) AS used, "
            "coalesce(array_agg(t.id ORDER BY t.id) FILTER (WHERE t.id IS NOT NULL AND t.revoked_at IS NULL), "
            "'{}') AS tokens FROM tenants n LEFT JOIN tenant_usage u ON u.tenant = n.name "
            "AND u.day = (now() AT TIME ZONE 'utc')::date LEFT JOIN tokens t ON t.tenant = n.name "
            "GROUP BY n.name, n.rate_per_s, n.burst, n.daily_quota, u.used ORDER BY n.name"
        )
        return [
            TenantUsage(r["name"], r["rate_per_s"], r["burst"], r["daily_quota"], r["used"], tuple(r["tokens"]))
            for r in rows
        ]

    async def add_token(
        self,
        token_id: str,
        tenant: str,
        secret_sha256: bytes,
        scopes: Sequence[str],
        expires_at: dt.datetime | None = None,
        holder: str | None = None,
        artifacts: Sequence[str] | None = None,
    ) -> bool:
        """Store a token of ``tenant``; returns False (storing nothing) when the tenant does not exist."""
        if await self.pool.fetchval("SELECT 1 FROM tenants WHERE name = $1", tenant) is None:
            return False
        await self.pool.execute(
            "INSERT INTO tokens (id, tenant, secret_sha256, scopes, expires_at, holder, artifacts) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7)",
            token_id,
            tenant,
            secret_sha256,
            list(scopes),
            expires_at,
            holder,
            None if artifacts is None else sorted(artifacts),
        )
        return True

    async def revoke(self, token_id: str) -> bool:
        """Mark token ``token_id`` revoked (keeping the first revocation's time); False if there is none."""
        done = await self.pool.fetchval(
            "UPDATE tokens SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1 RETURNING id", token_id
        )
        return done is not None
