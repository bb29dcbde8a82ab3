"""TCB evaluation over TCB info bodies (pure, no signatures involved)."""

from __future__ import annotations

from typing import Any

import pytest

from atlas_log.errors import QuoteError
from atlas_log.tdx.pck import PckExtension
from atlas_log.tdx.tcb import TcbStatus, evaluate_tcb, relaunch_status

EXT = PckExtension(fmspc=bytes(6), pce_id=bytes(2), sgx_tcb_components=(2,) * 16, pce_svn=11, cpu_svn=bytes(16))
QE_OK = TcbStatus("UpToDate")


def _level(sgx: int, tdx: int, status: str, advisories: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "tcb": {
            "sgxtcbcomponents": [{"svn": sgx}] * 16,
            "pcesvn": 11,
            # Component 1 is the module's major version: 0, so that no module identity applies.
            "tdxtcbcomponents": [{"svn": 0 if i == 1 else tdx} for i in range(16)],
        },
        "tcbStatus": status,
        "advisoryIDs": list(advisories),
    }


def _svn(n: int) -> bytes:
    """A TEE_TCB_SVN of ``n`` in every component but the module's major version."""
    return bytes([n, 0] + [n] * 14)


def _tcb(*levels: dict[str, Any]) -> dict[str, Any]:
    return {"tcbLevels": list(levels)}


def test_the_highest_level_the_platform_meets_decides() -> None:
    tcb = _tcb(_level(2, 3, "UpToDate"), _level(1, 1, "OutOfDate", ("INTEL-SA-1",)))
    assert evaluate_tcb(tcb, EXT, _svn(3), QE_OK) == TcbStatus("UpToDate")
    assert evaluate_tcb(tcb, EXT, _svn(1), QE_OK) == TcbStatus("OutOfDate", ("INTEL-SA-1",))


def test_an_out_of_date_qe_makes_the_platform_out_of_date() -> None:
    qe = TcbStatus("OutOfDate", ("INTEL-SA-2",))
    got = evaluate_tcb(_tcb(_level(2, 0, "UpToDate", ("INTEL-SA-1",))), EXT, _svn(0), qe)
    assert got == TcbStatus("OutOfDate", ("INTEL-SA-1", "INTEL-SA-2"))
    got = evaluate_tcb(_tcb(_level(2, 0, "ConfigurationNeeded")), EXT, _svn(0), qe)
    assert got.status == "OutOfDateConfigurationNeeded"
    assert evaluate_tcb(_tcb(_level(2, 0, "UpToDate")), EXT, _svn(0), TcbStatus("Revoked")).status == "Revoked"


def test_no_matching_level_is_a_rejection() -> None:
    with pytest.raises(QuoteError) as info:
        evaluate_tcb(_tcb(_level(3, 0, "UpToDate")), EXT, _svn(0), QE_OK)
    assert info.value.code == "tcb-level-not-found"


def test_relaunch_is_advised_when_the_current_module_is_up_to_date() -> None:
    tcb = _tcb(_level(2, 3, "UpToDate"), _level(2, 0, "OutOfDate", ("A",)))
    launch = evaluate_tcb(tcb, EXT, _svn(0), QE_OK)
    assert relaunch_status(launch, tcb, EXT, _svn(3), QE_OK) == TcbStatus("TDRelaunchAdvised", ("A",))
    assert relaunch_status(launch, tcb, EXT, _svn(0), QE_OK) == launch  # still out of date
    assert relaunch_status(launch, tcb, EXT, None, QE_OK) == launch  # TDX 1.0: no SVN2
