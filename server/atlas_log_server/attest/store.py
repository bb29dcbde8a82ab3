"""The server's collateral store: raw PCS responses in PostgreSQL, verified once, cached in memory, refreshed
in the background before they expire. A quote is never verified against expired collateral: the verifier
checks every validity window at admission time, and the store refetches well before ``nextUpdate``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg

from atlas_log.errors import CollateralFetchError, QuoteError
from atlas_log.tdx.collateral import COLLATERAL_PARTS, Collateral
from atlas_log.tdx.pcs import PcsClient
from atlas_log.tdx.verified_collateral import collateral_validity
from atlas_log_server.metrics import Metrics

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Cached:
    collateral: Collateral
    not_before: int
    not_after: int


class CollateralStore:
    def __init__(
        self,
        pool: asyncpg.Pool,
        pcs: PcsClient,
        roots: list[str],
        refresh_margin_s: int,
        clock: Callable[[], float] = time.time,
        metrics: Metrics | None = None,
    ) -> None:
        self.pool = pool
        self.metrics = metrics
        self.pcs = pcs
        self.roots = roots
        self.margin = refresh_margin_s
        self.clock = clock
        self._mem: dict[tuple[str, str], _Cached] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    async def get(self, fmspc: str, ca: str) -> Collateral:
        """Valid collateral for a platform: from memory, else PostgreSQL, else PCS (then stored)."""
        key = (fmspc.upper(), ca)
        now = int(self.clock())
        hit = self._mem.get(key)
        if hit is not None and hit.not_before <= now < hit.not_after:
            return hit.collateral
        async with self._locks.setdefault(key, asyncio.Lock()):
            hit = self._mem.get(key)
            if hit is not None and hit.not_before <= now < hit.not_after:
                return hit.collateral
            stored = await self._load(key, now)
            if stored is not None and now < stored.not_after - self.margin:
                self._cache(key, stored)
                return stored.collateral
            try:
                fresh = await self._fetch(key)
            except (CollateralFetchError, QuoteError):
                if stored is not None:  # PCS is down but what we hold is still valid
                    self._cache(key, stored)
                    return stored.collateral
                raise
            return fresh.collateral

    def _cache(self, key: tuple[str, str], cached: _Cached) -> None:
        self._mem[key] = cached
        if self.metrics is not None:
            self.metrics.collateral_expiry.labels(f"{key[0]}/{key[1]}").set(cached.not_after - int(self.clock()))

    async def _fetch(self, key: tuple[str, str]) -> _Cached:
        collateral = await self.pcs.collateral(*key)
        not_before, not_after = collateral_validity(collateral, self.roots)
        if int(self.clock()) >= not_after:
            raise CollateralFetchError(f"PCS served collateral for {key[0]} that expired at {not_after}")
        await self.pool.execute(
            "INSERT INTO pcs_collateral (digest, fmspc, ca, "
            + ", ".join(COLLATERAL_PARTS)
            + ", not_before, not_after) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (digest) DO NOTHING",
            collateral.digest,
            key[0],
            key[1],
            *(getattr(collateral, p) for p in COLLATERAL_PARTS),
            not_before,
            not_after,
        )
        cached = _Cached(collateral, not_before, not_after)
        self._cache(key, cached)
        _log.info("collateral for FMSPC %s (%s) fetched; valid until %d", key[0], key[1], not_after)
        return cached

    async def _load(self, key: tuple[str, str], now: int) -> _Cached | None:
        row = await self.pool.fetchrow(
            "SELECT * FROM pcs_collateral WHERE fmspc = $1 AND ca = $2 AND not_before <= $3 AND not_after > $3 "
            "ORDER BY not_after DESC LIMIT 1",
            key[0],
            key[1],
            now,
        )
        if row is None:
            return None
        return _Cached(Collateral(*(bytes(row[p]) for p in COLLATERAL_PARTS)), row["not_before"], row["not_after"])

    async def by_digest(self, digest: str) -> Collateral | None:
        row = await self.pool.fetchrow("SELECT * FROM pcs_collateral WHERE digest = $1", digest)
        return None if row is None else Collateral(*(bytes(row[p]) for p in COLLATERAL_PARTS))

    def freshness(self) -> dict[str, int]:
        """Seconds until each cached platform's collateral expires."""
        now = int(self.clock())
        return {f"{k[0]}/{k[1]}": v.not_after - now for k, v in self._mem.items()}

    async def refresh_once(self) -> int:
        """Refetch cached collateral that is within the refresh margin of expiry; return how many succeeded."""
        now = int(self.clock())
        done = 0
        for key, cached in list(self._mem.items()):
            if cached.not_after - now > self.margin:
                continue
            try:
                async with self._locks.setdefault(key, asyncio.Lock()):
                    await self._fetch(key)
                done += 1
            except (CollateralFetchError, QuoteError, OSError, asyncpg.PostgresError) as exc:
                _log.warning("collateral refresh for %s failed: %s", key, exc)
                if self.metrics is not None:
                    self.metrics.collateral_refresh_failures.inc()
        if self.metrics is not None:
            for platform, seconds in self.freshness().items():
                self.metrics.collateral_expiry.labels(platform).set(seconds)
        return done

    async def refresh_loop(self, interval_s: float = 60) -> None:
        """Run :meth:`refresh_once` every ``interval_s`` seconds until cancelled."""
        while True:
            await asyncio.sleep(interval_s)
            await self.refresh_once()
