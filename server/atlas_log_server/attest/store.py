"""The server's collateral store: raw PCS responses in PostgreSQL, verified once, cached in memory, refreshed
in the background before they expire. A quote is never verified against expired collateral: the verifier
checks every validity window at admission time, and the store refetches well before ``nextUpdate``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import asyncpg

from atlas_log.errors import CollateralFetchError, QuoteError
from atlas_log.tdx.collateral import Collateral
from atlas_log.tdx.pcs import PcsClient
from atlas_log.tdx.verified_collateral import collateral_validity
from atlas_log_server.db.collateral import CollateralRepository, StoredCollateral
from atlas_log_server.metrics import Metrics

_log = logging.getLogger(__name__)


class CollateralStore:
    """Valid collateral per platform (FMSPC and PCK CA), kept in ``repo`` and cached in memory."""

    def __init__(
        self,
        repo: CollateralRepository,
        pcs: PcsClient,
        roots: list[str],
        refresh_margin_s: int,
        clock: Callable[[], float] = time.time,
        metrics: Metrics | None = None,
    ) -> None:
        self.repo = repo
        self.metrics = metrics
        self.pcs = pcs
        self.roots = roots
        self.margin = refresh_margin_s
        self.clock = clock
        self._mem: dict[tuple[str, str], StoredCollateral] = {}
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
            stored = await self.repo.valid_at(key[0], key[1], now)
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

    def _cache(self, key: tuple[str, str], cached: StoredCollateral) -> None:
        self._mem[key] = cached
        if self.metrics is not None:
            self.metrics.collateral_expiry.labels(f"{key[0]}/{key[1]}").set(cached.not_after - int(self.clock()))

    async def _fetch(self, key: tuple[str, str]) -> StoredCollateral:
        collateral = await self.pcs.collateral(*key)
        not_before, not_after = collateral_validity(collateral, self.roots)
        if int(self.clock()) >= not_after:
            raise CollateralFetchError(f"PCS served collateral for {key[0]} that expired at {not_after}")
        cached = StoredCollateral(collateral, not_before, not_after)
        await self.repo.save(key[0], key[1], cached)
        self._cache(key, cached)
        _log.info("collateral for FMSPC %s (%s) fetched; valid until %d", key[0], key[1], not_after)
        return cached

    async def by_digest(self, digest: str) -> Collateral | None:
        """The stored collateral set with this digest, if any."""
        return await self.repo.by_digest(digest)

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
