"""The outcome of verifying one TDX quote, and its JSON form."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from atlas_log.tdx.quote import TdReport

__all__ = ["Verdict", "td_json"]


def td_json(td: TdReport) -> dict[str, Any]:
    """The measurements a verdict reports of a TD (hex), keyed as in :meth:`Verdict.to_json`."""
    return {
        "mr_td": td.mr_td.hex(),
        "rtmr": [r.hex() for r in td.rtmr],
        "mr_config_id": td.mr_config_id.hex(),
        "mr_owner": td.mr_owner.hex(),
        "mr_owner_config": td.mr_owner_config.hex(),
        "td_attributes": td.td_attributes.hex(),
        "xfam": td.xfam.hex(),
        "mr_seam": td.mr_seam.hex(),
        "tee_tcb_svn": td.tee_tcb_svn.hex(),
        "report_data": td.report_data.hex(),
    }


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of verifying one quote. ``accept`` is False with ``code``/``reason`` on any rejection;
    facts established before a rejection are filled in (``td`` is the quote's TD report once it parsed and
    came from Intel's QE, else None)."""

    accept: bool
    code: str | None = None
    reason: str | None = None
    tcb_status: str | None = None
    advisory_ids: tuple[str, ...] = ()
    fmspc: str | None = None
    tcb_evaluation_data_number: int | None = None
    quote_version: int | None = None
    td: TdReport | None = None
    collateral_expiry: int | None = None
    collateral_digests: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "accept": self.accept,
            "code": self.code,
            "reason": self.reason,
            "tcb_status": self.tcb_status,
            "advisory_ids": list(self.advisory_ids),
            "fmspc": self.fmspc,
            "tcb_evaluation_data_number": self.tcb_evaluation_data_number,
            "quote_version": self.quote_version,
            "td": td_json(self.td) if self.td is not None else {},
            "collateral_expiry": self.collateral_expiry,
            "collateral_digests": self.collateral_digests,
        }
