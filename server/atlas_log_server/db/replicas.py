"""PostgreSQL read replicas (streaming standbys of the log's database) for the read side.

A read request is pinned to one replica for its whole life (:func:`pinned`), so every query of an answer sees
one snapshot of the log: the answer names the checkpoint that replica holds and proves everything against it,
never a tree size the replica does not have. What the log writes stays on the primary. The log is append-only,
so the primary holds everything a replica does: a query that falls back to the primary mid-request reads the
same rows.

:class:`Replicas` keeps a pool per replica and a health watch; a replica that does not answer is taken out of
rotation until it answers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Iterator, Sequence
from contextvars import ContextVar

import asyncpg

from atlas_log_server.db.engine import create_pool, shown

__all__ = ["Replicas", "pinned", "reading"]

_log = logging.getLogger(__name__)
_PINNED: ContextVar[asyncpg.Pool | None] = ContextVar("atlas_read_pool", default=None)
WATCH_S = 0.5
PROBE_TIMEOUT_S = 1.0


def reading(primary: asyncpg.Pool) -> asyncpg.Pool:
    """The pool the current request reads from: its pinned replica, or ``primary``."""
    return _PINNED.get() or primary


@contextlib.contextmanager
def pinned(pool: asyncpg.Pool | None) -> Iterator[None]:
    """Read from ``pool`` (None: the primary) within the block."""
    token = _PINNED.set(pool)
    try:
        yield
    finally:
        _PINNED.reset(token)


class Replicas:
    """Pools of the replicas at ``urls``, the ones answering now, taken in turn."""

    def __init__(self, urls: Sequence[str], pool_size: int) -> None:
        self.urls = tuple(urls)
        self.pool_size = pool_size
        self.pools: dict[str, asyncpg.Pool] = {}
        self.up: set[str] = set()
        self._turn = itertools.count()

    async def _probe(self, url: str) -> bool:
        try:
            pool = self.pools.get(url)
            if pool is None:
                made = create_pool(url, self.pool_size, min_size=0)
                pool = self.pools[url] = await asyncio.wait_for(made, PROBE_TIMEOUT_S * 5)
            await asyncio.wait_for(pool.fetchval("SELECT 1"), PROBE_TIMEOUT_S)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
            return False
        return True

    async def check(self) -> None:
        """Probe every replica once; log each one that went down or came back."""
        for url in self.urls:
            ok = await self._probe(url)
            if ok and url not in self.up:
                _log.info("read replica %s is answering: reads go to it", shown(url))
                self.up.add(url)
            elif not ok and url in self.up:
                _log.warning("read replica %s does not answer: reads go elsewhere until it does", shown(url))
                self.up.discard(url)

    async def watch(self) -> None:
        while True:
            await self.check()
            await asyncio.sleep(WATCH_S)

    def pick(self) -> asyncpg.Pool | None:
        """A replica answering now (in turn), or None: read from the primary."""
        live = [u for u in self.urls if u in self.up and u in self.pools]
        if not live:
            return None
        return self.pools[live[next(self._turn) % len(live)]]

    def down(self, pool: asyncpg.Pool) -> None:
        """Take the replica of ``pool`` out of rotation (a query on it failed); the watch brings it back."""
        for url, p in self.pools.items():
            if p is pool and url in self.up:
                self.up.discard(url)
                _log.warning("read replica %s failed a query: reads go elsewhere until it answers", shown(url))

    async def close(self) -> None:
        for pool in self.pools.values():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pool.close(), 5)
