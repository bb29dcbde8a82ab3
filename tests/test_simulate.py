"""The simulated TDX platform (development and tests only)."""

from __future__ import annotations

from pathlib import Path

import pytest

from atlas_log.tdx.quote import parse_quote
from atlas_log.tdx.verification import verify_quote
from atlas_log.testing.simulate import SimulatedPlatform, SimulatedProvider

NOW = 1_800_000_000


@pytest.fixture(scope="module")
def platform() -> SimulatedPlatform:
    return SimulatedPlatform.create(NOW)


def _attrs(*bits: int) -> bytes:
    return sum(1 << b for b in bits).to_bytes(8, "little")


def test_simulated_quotes_set_sept_ve_disable(platform: SimulatedPlatform) -> None:
    assert parse_quote(platform.quote()).body.td_attributes == _attrs(28)


def test_simulated_platform_persists(tmp_path: Path, platform: SimulatedPlatform) -> None:
    platform.save(tmp_path)
    again = SimulatedPlatform.load(tmp_path)
    assert again.root_fingerprint == platform.root_fingerprint
    verdict = verify_quote(again.quote(), platform.collateral(), NOW + 3600, roots=[again.root_fingerprint])
    assert verdict.accept, verdict.reason


def test_the_provider_quotes_the_report_data(platform: SimulatedPlatform) -> None:
    report_data = bytes(range(64))
    assert parse_quote(SimulatedProvider(platform).quote(report_data)).body.report_data == report_data
