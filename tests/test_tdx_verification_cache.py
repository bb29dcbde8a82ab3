from __future__ import annotations

import pytest

from atlas_log.tdx.verification_cache import NO_CACHE, VerificationCache


def test_a_value_is_computed_once_per_key() -> None:
    cache, calls = VerificationCache(), []

    def compute() -> int:
        calls.append(1)
        return len(calls)

    assert cache.get("t", b"k", compute) == 1
    assert cache.get("t", b"k", compute) == 1
    assert cache.get("other", b"k", compute) == 2  # tables are separate


def test_failures_are_not_cached() -> None:
    cache = VerificationCache()

    def fail() -> int:
        raise ValueError("bad")

    for _ in range(2):
        with pytest.raises(ValueError):
            cache.get("t", b"k", fail)
    assert cache.get("t", b"k", lambda: 7) == 7


def test_the_least_recently_used_entry_goes_first() -> None:
    cache = VerificationCache(size=2)
    cache.get("t", 1, lambda: "one")
    cache.get("t", 2, lambda: "two")
    cache.get("t", 1, lambda: "recomputed")  # a hit: 1 is now the most recent
    cache.get("t", 3, lambda: "three")  # evicts 2
    assert cache.get("t", 1, lambda: "recomputed") == "one"
    assert cache.get("t", 2, lambda: "recomputed") == "recomputed"


def test_only_copies_the_named_tables() -> None:
    cache = VerificationCache()
    cache.get("collateral", 1, lambda: "c")
    cache.get("pck", 1, lambda: "p")
    kept = cache.only("collateral")
    assert kept.get("collateral", 1, lambda: "new") == "c"
    assert kept.get("pck", 1, lambda: "new") == "new"


def test_no_cache_remembers_nothing() -> None:
    assert NO_CACHE.get("t", 1, lambda: "a") == "a"
    assert NO_CACHE.get("t", 1, lambda: "b") == "b"
