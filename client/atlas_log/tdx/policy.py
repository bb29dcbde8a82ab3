"""The relying party's appraisal policy for TDX verdicts (what Intel's library leaves to the caller)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from atlas_log.errors import FormatError

__all__ = ["TCB_STATUSES", "Policy"]

TCB_STATUSES = frozenset(
    {
        "UpToDate",
        "SWHardeningNeeded",
        "ConfigurationNeeded",
        "ConfigurationAndSWHardeningNeeded",
        "OutOfDate",
        "OutOfDateConfigurationNeeded",
        "Revoked",
        "TDRelaunchAdvised",
        "TDRelaunchAdvisedConfigurationNeeded",
    }
)


def _hexset(values: Any, what: str, size: int) -> frozenset[str] | None:
    if values is None:
        return None
    if not isinstance(values, list | tuple | set | frozenset) or not all(isinstance(v, str) for v in values):
        raise FormatError(f"policy {what} must be a list of hex strings")
    out = frozenset(v.lower() for v in values)
    if any(len(v) != 2 * size or any(c not in "0123456789abcdef" for c in v) for v in out):
        raise FormatError(f"policy {what} values must be {size}-byte hex")
    return out


@dataclass(frozen=True, slots=True)
class Policy:
    """Which verified quotes to accept. The default accepts ``UpToDate`` only.

    Debug TDs are always rejected. ``None`` for an allow-list means "any value". TD attributes beyond DEBUG
    (reference/tdx.md §1.3, "TDATTRIBUTES bits") follow dcap-qvl's strict defaults: SEPT_VE_DISABLE must be
    set, and MIGRATABLE, PERFMON and reserved bits are rejected, each unless the policy says otherwise.
    """

    allowed_statuses: frozenset[str] = frozenset({"UpToDate"})
    denied_advisories: frozenset[str] = frozenset()
    mr_td: frozenset[str] | None = None
    rtmr: tuple[frozenset[str] | None, ...] = (None, None, None, None)
    mr_config_id: frozenset[str] | None = None
    min_tcb_evaluation_data_number: int | None = None
    require_sept_ve_disable: bool = True
    allow_migratable: bool = False
    allow_perfmon: bool = False
    allow_reserved_td_attributes: bool = False

    def __post_init__(self) -> None:
        unknown = self.allowed_statuses - TCB_STATUSES
        if unknown:
            raise FormatError(f"unknown TCB statuses in policy: {sorted(unknown)}")
        if len(self.rtmr) != 4:
            raise FormatError("policy rtmr must have 4 entries")

    @classmethod
    def from_json(cls, obj: Any) -> Policy:
        """``{"allowed_statuses": [...], "denied_advisories": [...], "mr_td": [...], "rtmr": [[...]|null x4],
        "mr_config_id": [...], "min_tcb_evaluation_data_number": N, "require_sept_ve_disable": true,
        "allow_migratable": false, "allow_perfmon": false, "allow_reserved_td_attributes": false}``; every
        member optional (the values shown for the booleans are the defaults)."""
        if not isinstance(obj, dict):
            raise FormatError("policy must be a JSON object")
        known = {
            "allowed_statuses",
            "denied_advisories",
            "mr_td",
            "rtmr",
            "mr_config_id",
            "min_tcb_evaluation_data_number",
            *_FLAGS,
        }
        if set(obj) - known:
            raise FormatError(f"unknown policy members: {sorted(set(obj) - known)}")
        statuses = obj.get("allowed_statuses", ["UpToDate"])
        advisories = obj.get("denied_advisories", [])
        if not all(isinstance(s, str) for s in statuses) or not all(isinstance(a, str) for a in advisories):
            raise FormatError("policy statuses and advisories must be strings")
        rtmr = obj.get("rtmr", [None] * 4)
        if not isinstance(rtmr, list) or len(rtmr) != 4:
            raise FormatError("policy rtmr must be a list of 4 allow-lists (or nulls)")
        minimum = obj.get("min_tcb_evaluation_data_number")
        if minimum is not None and (not isinstance(minimum, int) or isinstance(minimum, bool)):
            raise FormatError("min_tcb_evaluation_data_number must be an integer")
        flags = {name: obj.get(name, default) for name, default in _FLAGS.items()}
        for name, value in flags.items():
            if not isinstance(value, bool):
                raise FormatError(f"policy {name} must be true or false")
        return cls(
            allowed_statuses=frozenset(statuses),
            denied_advisories=frozenset(advisories),
            mr_td=_hexset(obj.get("mr_td"), "mr_td", 48),
            rtmr=tuple(_hexset(r, f"rtmr[{i}]", 48) for i, r in enumerate(rtmr)),
            mr_config_id=_hexset(obj.get("mr_config_id"), "mr_config_id", 48),
            min_tcb_evaluation_data_number=minimum,
            **flags,
        )


# The policy file's boolean members and their defaults (the dataclass defaults).
_FLAGS = {
    "require_sept_ve_disable": True,
    "allow_migratable": False,
    "allow_perfmon": False,
    "allow_reserved_td_attributes": False,
}
