"""TCB evaluation (steps G, J and L of the procedure): the TDX module's identity, the QE's identity and
TCB level, and the platform's TCB status from signed TCB info, converged with the module's and the QE's.

Every function here is pure over collateral bodies already signature-checked (:mod:`verified_collateral`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from atlas_log.errors import QuoteError
from atlas_log.tdx.pck import PckExtension
from atlas_log.tdx.pki import collateral_hex
from atlas_log.tdx.quote import QeReport

__all__ = [
    "CONFIG_STATUSES",
    "TcbStatus",
    "check_module",
    "check_qe_identity",
    "evaluate_tcb",
    "relaunch_status",
]

CONFIG_STATUSES = frozenset({"ConfigurationNeeded", "ConfigurationAndSWHardeningNeeded"})


@dataclass(frozen=True, slots=True)
class TcbStatus:
    """A TCB status (``UpToDate``, ``OutOfDate`` …) and the Intel advisories that apply, in order, unique."""

    status: str
    advisories: tuple[str, ...] = ()


def _components(level: dict[str, Any], name: str) -> tuple[int, ...]:
    comps = level.get("tcb", {}).get(name)
    if not isinstance(comps, list) or len(comps) != 16:
        raise QuoteError("collateral-malformed", f"TCB level {name} must list 16 components")
    out = []
    for c in comps:
        svn = c.get("svn") if isinstance(c, dict) else None
        if not isinstance(svn, int) or isinstance(svn, bool):
            raise QuoteError("collateral-malformed", f"TCB level {name} has a non-integer svn")
        out.append(svn)
    return tuple(out)


def _match_platform(
    levels: list[dict[str, Any]], sgx: tuple[int, ...], pce_svn: int, tee_svn: bytes
) -> dict[str, Any] | None:
    start = 2 if tee_svn[1] > 0 else 0  # Intel: components 0-1 are the module, rated by its identity
    keyed = []
    for level in levels:
        pcesvn = level.get("tcb", {}).get("pcesvn")
        if not isinstance(pcesvn, int):
            raise QuoteError("collateral-malformed", "TCB level has no integer pcesvn")
        keyed.append(((_components(level, "sgxtcbcomponents"), pcesvn, _components(level, "tdxtcbcomponents")), level))
    keyed.sort(key=lambda kv: kv[0], reverse=True)
    for (lsgx, lpce, ltdx), level in keyed:
        if (
            all(a >= b for a, b in zip(sgx, lsgx, strict=True))
            and pce_svn >= lpce
            and all(tee_svn[i] >= ltdx[i] for i in range(start, 16))
        ):
            return level
    return None


def _status(level: dict[str, Any], what: str) -> TcbStatus:
    status = level.get("tcbStatus")
    if not isinstance(status, str):
        raise QuoteError("collateral-malformed", f"{what} has no tcbStatus")
    adv = level.get("advisoryIDs", [])
    if not isinstance(adv, list) or not all(isinstance(a, str) for a in adv):
        raise QuoteError("collateral-malformed", f"{what} advisoryIDs must be strings")
    return TcbStatus(status, tuple(adv))


def _converge(platform: str, components: Iterable[str]) -> str:
    comps = list(components)
    if "Revoked" in comps:
        return "Revoked"
    if "OutOfDate" in comps:
        if platform in ("UpToDate", "SWHardeningNeeded"):
            return "OutOfDate"
        if platform in CONFIG_STATUSES:
            return "OutOfDateConfigurationNeeded"
    return platform


def _module_identity(tcb: dict[str, Any], tee_svn: bytes) -> dict[str, Any] | None:
    if tee_svn[1] == 0:
        return None
    want = f"TDX_{tee_svn[1]:02X}"
    for ident in tcb.get("tdxModuleIdentities", []) or []:
        if isinstance(ident, dict) and str(ident.get("id", "")).upper() == want:
            return ident
    raise QuoteError("tdx-module-mismatch", f"TCB info has no TDX module identity {want}")


def evaluate_tcb(tcb: dict[str, Any], ext: PckExtension, tee_svn: bytes, qe: TcbStatus) -> TcbStatus:
    """Steps L2-L5: the platform's level in the TCB info, the module's level, and their convergence with the
    QE's status ``qe``. Raises :class:`QuoteError` when no level matches or the TCB info is malformed."""
    levels = tcb.get("tcbLevels")
    if not isinstance(levels, list) or not levels:
        raise QuoteError("collateral-malformed", "TCB info has no tcbLevels")
    level = _match_platform(levels, ext.sgx_tcb_components, ext.pce_svn, tee_svn)
    if level is None:
        raise QuoteError("tcb-level-not-found", "no TCB level in the TCB info matches this platform")
    platform = _status(level, "TCB level")
    comps, advisories = [qe.status], [*platform.advisories, *qe.advisories]
    ident = _module_identity(tcb, tee_svn)
    if ident is not None:
        mod_level = next(
            (
                lv
                for lv in ident.get("tcbLevels", []) or []
                if isinstance(lv, dict)
                and isinstance(lv.get("tcb", {}).get("isvsvn"), int)
                and tee_svn[0] >= lv["tcb"]["isvsvn"]
            ),
            None,
        )
        if mod_level is None:
            raise QuoteError("tdx-module-tcb-not-supported", f"TDX module SVN {tee_svn[0]} matches no level")
        module = _status(mod_level, "TDX module level")
        comps.append(module.status)
        advisories.extend(module.advisories)
    return TcbStatus(_converge(platform.status, comps), tuple(dict.fromkeys(advisories)))


def relaunch_status(
    launch: TcbStatus, tcb: dict[str, Any], ext: PckExtension, tee_svn2: bytes | None, qe: TcbStatus
) -> TcbStatus:
    """Step L for TDX 1.5: a TD launched on an out-of-date module that is current now (``TEE_TCB_SVN2``)
    is ``TDRelaunchAdvised`` (``…ConfigurationNeeded``) rather than out of date; otherwise ``launch``."""
    if tee_svn2 is None or launch.status not in ("OutOfDate", "OutOfDateConfigurationNeeded"):
        return launch
    try:
        current: str | None = evaluate_tcb(tcb, ext, tee_svn2, qe).status
    except QuoteError:
        current = None
    if current in ("UpToDate", "SWHardeningNeeded", *CONFIG_STATUSES):
        config = launch.status == "OutOfDateConfigurationNeeded" or current in CONFIG_STATUSES
        return TcbStatus("TDRelaunchAdvisedConfigurationNeeded" if config else "TDRelaunchAdvised", launch.advisories)
    return launch


def check_module(tcb: dict[str, Any], tee_svn: bytes, mr_signer_seam: bytes, seam_attributes: bytes) -> bool:
    """Step G: the TDX module that reported is the one the TCB info names (MRSIGNERSEAM, zero SEAMATTRIBUTES).
    Returns True (a cacheable success) or raises :class:`QuoteError`."""
    ident = _module_identity(tcb, tee_svn)
    module = ident if ident is not None else tcb.get("tdxModule")
    if not isinstance(module, dict):
        raise QuoteError("collateral-malformed", "TCB info has no tdxModule")
    if mr_signer_seam != collateral_hex(module.get("mrsigner"), 48, "tdxModule.mrsigner"):
        raise QuoteError("tdx-module-mismatch", "MRSIGNERSEAM does not match the TDX module identity")
    if any(seam_attributes):
        raise QuoteError("tdx-module-mismatch", "SEAMATTRIBUTES must be zero")
    return True


def check_qe_identity(qe: dict[str, Any], qr: QeReport) -> TcbStatus:
    """Step J: the QE is the one the QE identity describes, at a TCB level it lists; returns that level's
    status. Raises :class:`QuoteError` otherwise."""
    misc = int(collateral_hex(qe.get("miscselect"), 4, "miscselect").hex(), 16)
    misc_mask = int(collateral_hex(qe.get("miscselectMask"), 4, "miscselectMask").hex(), 16)
    attrs = collateral_hex(qe.get("attributes"), 16, "attributes")
    attrs_mask = collateral_hex(qe.get("attributesMask"), 16, "mask")
    if (qr.misc_select & misc_mask) != misc or bytes(
        a & m for a, m in zip(qr.attributes, attrs_mask, strict=True)
    ) != attrs:
        raise QuoteError("qe-identity-mismatch", "QE MISCSELECT or ATTRIBUTES do not match the QE identity")
    if qr.mr_signer != collateral_hex(qe.get("mrsigner"), 32, "mrsigner") or qr.isv_prod_id != qe.get("isvprodid"):
        raise QuoteError("qe-identity-mismatch", "QE MRSIGNER or ISVPRODID do not match the QE identity")
    levels = sorted(
        (
            lv
            for lv in qe.get("tcbLevels", []) or []
            if isinstance(lv, dict) and isinstance(lv.get("tcb", {}).get("isvsvn"), int)
        ),
        key=lambda lv: lv["tcb"]["isvsvn"],
        reverse=True,
    )
    level = next((lv for lv in levels if lv["tcb"]["isvsvn"] <= qr.isv_svn), None)
    if level is None:
        raise QuoteError("qe-tcb-not-supported", f"QE ISVSVN {qr.isv_svn} matches no QE identity TCB level")
    return _status(level, "QE TCB level")
