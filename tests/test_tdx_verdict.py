from __future__ import annotations

from atlas_log.tdx.quote import parse_quote
from atlas_log.tdx.verdict import Verdict
from atlas_log.testing.simulate import SimulatedPlatform

TD_KEYS = [
    "mr_td",
    "rtmr",
    "mr_config_id",
    "mr_owner",
    "mr_owner_config",
    "td_attributes",
    "xfam",
    "mr_seam",
    "tee_tcb_svn",
    "report_data",
]


def test_json_reports_the_td_in_hex() -> None:
    body = parse_quote(SimulatedPlatform.create().quote(bytes(range(64)))).body
    out = Verdict(True, tcb_status="UpToDate", advisory_ids=("A",), td=body).to_json()
    assert list(out["td"]) == TD_KEYS
    assert out["td"]["report_data"] == bytes(range(64)).hex()
    assert out["td"]["rtmr"] == [r.hex() for r in body.rtmr]
    assert out["advisory_ids"] == ["A"]


def test_a_rejection_before_the_td_reports_no_td() -> None:
    out = Verdict(False, "quote-malformed", "short").to_json()
    assert out["td"] == {} and out["accept"] is False and out["code"] == "quote-malformed"
