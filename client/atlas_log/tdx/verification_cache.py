"""Memo tables for quote verification, keyed by exact bytes.

Only work that depends on nothing but its key's bytes is cached (collateral parsing and signatures, the
PCK chain, QE report signatures, TCB level matching); time-dependent checks run on every call, so a cache
hit never changes a verdict.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

__all__ = ["NO_CACHE", "VerificationCache"]

T = TypeVar("T")


class VerificationCache:
    """Bounded (least recently used first out) memo tables. Safe to share across calls and collateral
    refreshes."""

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._tables: dict[str, OrderedDict[Hashable, Any]] = {}

    def get(self, table: str, key: Hashable, compute: Callable[[], T]) -> T:
        """The value cached under ``key`` in ``table``, else ``compute()`` (cached unless it raises)."""
        t = self._tables.setdefault(table, OrderedDict())
        try:
            t.move_to_end(key)
            hit: T = t[key]
            return hit
        except KeyError:
            pass
        value = compute()  # exceptions are not cached: a failure is recomputed (and fails again)
        t[key] = value
        if len(t) > self.size:
            t.popitem(last=False)
        return value

    def only(self, *tables: str) -> VerificationCache:
        """A new cache holding copies of just these tables (e.g. ``"collateral"`` after a refresh)."""
        other = VerificationCache(self.size)
        for name in tables:
            if name in self._tables:
                other._tables[name] = OrderedDict(self._tables[name])
        return other


class _NoCache(VerificationCache):
    def get(self, table: str, key: Hashable, compute: Callable[[], T]) -> T:
        return compute()


NO_CACHE: VerificationCache = _NoCache()
"""A cache that remembers nothing: what verification uses when the caller passes none."""
