from __future__ import annotations

import math

import pytest

from atlas_log_server.rate import TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_full_bucket_allows_a_burst_then_refills_at_the_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(2.0, 3, clock)
    assert [bucket.take() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take() == pytest.approx(0.5)  # one token at 2/s
    clock.now += 0.5
    assert bucket.take() == 0.0
    assert bucket.take() == pytest.approx(0.5)


def test_refill_is_capped_at_the_burst() -> None:
    clock = Clock()
    bucket = TokenBucket(1.0, 2, clock)
    clock.now += 1000
    assert [bucket.take() for _ in range(3)][:2] == [0.0, 0.0]
    assert bucket.take() > 0


def test_a_refusal_spends_nothing() -> None:
    clock = Clock()
    bucket = TokenBucket(1.0, 1, clock)
    assert bucket.take() == 0.0
    for _ in range(5):
        assert bucket.take() == pytest.approx(1.0)
    clock.now += 1
    assert bucket.take() == 0.0


def test_a_zero_rate_never_refills() -> None:
    clock = Clock()
    bucket = TokenBucket(0.0, 1, clock)
    assert bucket.take() == 0.0
    clock.now += 10**6
    assert bucket.take() == math.inf


def test_a_changed_grant_applies_to_the_next_request() -> None:
    clock = Clock()
    bucket = TokenBucket(1.0, 5, clock)
    bucket.burst = 1  # the level earned is capped at the new burst
    assert bucket.take() == 0.0
    assert bucket.take() > 0
