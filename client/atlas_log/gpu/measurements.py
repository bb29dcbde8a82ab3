"""The comparison of a report's measurements with the golden measurements of its driver and VBIOS RIMs.

NVIDIA's matching rule (README of the vectors, "Matching rule"): the runtime block with SPDM index k is RIM
index k − 1; only active RIM entries count; an entry matches when the runtime value equals any of its
alternatives; an active entry without a runtime block is a mismatch; runtime blocks without an entry are
ignored. RIM index 35 (NVDEC 0) is not compared while the report says NVDEC 0 is disabled. The two RIMs must
not both have an active entry at one index.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from atlas_log.gpu.opaque import NVDEC0_DISABLED
from atlas_log.gpu.report import Measurement
from atlas_log.gpu.rim import GoldenMeasurement, RimKind

__all__ = ["MeasurementComparison", "compare_measurements"]

_NVDEC0_INDEX = 35


@dataclass(frozen=True, slots=True)
class MeasurementComparison:
    """``mismatched`` lists, per RIM kind, the RIM indices whose runtime value matched no alternative;
    ``conflicts`` the indices both RIMs claim."""

    mismatched: dict[RimKind, tuple[int, ...]]
    conflicts: tuple[int, ...]

    @property
    def matches(self) -> bool:
        return not self.conflicts and not any(self.mismatched.values())


def compare_measurements(
    runtime: Mapping[int, Measurement],
    golden: Mapping[RimKind, Mapping[int, GoldenMeasurement]],
    nvdec0_status: int | None,
) -> MeasurementComparison:
    """Compare ``runtime`` (by SPDM index) with each RIM's ``golden`` entries (by RIM index). Pure."""
    mismatched: dict[RimKind, tuple[int, ...]] = {}
    for kind, entries in golden.items():
        bad = []
        for index in sorted(entries):
            if index == _NVDEC0_INDEX and nvdec0_status == NVDEC0_DISABLED:
                continue  # a disabled decoder's measurement is not meaningful
            value = runtime.get(index + 1)
            if value is None or value not in entries[index].alternatives:
                bad.append(index)
        mismatched[kind] = tuple(bad)
    kinds = list(golden.values())
    conflicts = tuple(sorted(set(kinds[0]) & set(kinds[1]))) if len(kinds) == 2 else ()
    return MeasurementComparison(mismatched, conflicts)
