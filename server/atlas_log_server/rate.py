"""A token bucket: the one rate limit of the log (per tenant) and of the witness (per log)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

__all__ = ["TokenBucket"]


class TokenBucket:
    """``burst`` requests at once, refilled at ``rate_per_s`` tokens a second; starts full.

    ``rate_per_s`` and ``burst`` may be changed between calls (a tenant's grant can change); the level
    already earned is kept, capped at the new burst.
    """

    __slots__ = ("_level", "_stamp", "burst", "clock", "rate_per_s")

    def __init__(self, rate_per_s: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate_per_s, self.burst, self.clock = rate_per_s, burst, clock
        self._level, self._stamp = float(burst), clock()

    def take(self) -> float:
        """Spend a token and return 0 if one is there; else spend nothing and return the seconds until one
        will be (``math.inf`` when the rate is 0)."""
        now = self.clock()
        self._level = min(float(self.burst), self._level + (now - self._stamp) * self.rate_per_s)
        self._stamp = now
        if self._level >= 1:
            self._level -= 1
            return 0.0
        return (1 - self._level) / self.rate_per_s if self.rate_per_s > 0 else math.inf
