"""TD attributes (step M of the procedure, in part): which TDATTRIBUTES a relying party accepts."""

from __future__ import annotations

from atlas_log.errors import QuoteError
from atlas_log.tdx.policy import Policy

__all__ = ["td_attributes_problem"]

# TDATTRIBUTES, a little-endian u64 (reference/tdx.md §1.3; Intel TDX module ABI, TD_ATTRIBUTES).
_TD_DEBUG = 1 << 0
_TD_SEPT_VE_DISABLE = 1 << 28
_TD_MIGRATABLE = 1 << 29
_TD_PKS = 1 << 30
_TD_KL = 1 << 31
_TD_PERFMON = 1 << 63
# Everything else is reserved in the ABI this verifier knows: TUD bits 1-7, SEC bits 8-27, OTHER bits 32-62.
_TD_RESERVED = ((1 << 64) - 1) & ~(_TD_DEBUG | _TD_SEPT_VE_DISABLE | _TD_MIGRATABLE | _TD_PKS | _TD_KL | _TD_PERFMON)


def td_attributes_problem(td_attributes: bytes, policy: Policy) -> QuoteError | None:
    """Why a TD with these TDATTRIBUTES (8 bytes, as in the TD report) is not acceptable under ``policy``,
    or None when it is. Pure.

    DEBUG is always rejected (the host can read and change the TD). As dcap-qvl 0.7 does by default
    (reference/tdx.md §2.2 M): SEPT_VE_DISABLE must be set (else the host can make the guest take #VE on
    private pages it removed), MIGRATABLE (the TD may move to a host this quote says nothing about), PERFMON
    (the host can profile the TD) and reserved bits (a feature this verifier cannot judge) are rejected —
    each unless the policy allows it. PKS and KL only add protections and are always allowed.
    """
    if len(td_attributes) != 8:
        return QuoteError("quote-malformed", "TDATTRIBUTES must be 8 bytes")
    attrs = int.from_bytes(td_attributes, "little")
    if attrs & _TD_DEBUG:
        return QuoteError("td-debug", "the TD runs in debug mode (TDATTRIBUTES.DEBUG is set)")
    if policy.require_sept_ve_disable and not attrs & _TD_SEPT_VE_DISABLE:
        return QuoteError(
            "td-sept-ve-not-disabled",
            "TDATTRIBUTES.SEPT_VE_DISABLE (bit 28) is clear; launch the TD with it set, or set "
            "require_sept_ve_disable=false in the policy if its guest disables SEPT #VE at run time",
        )
    if attrs & _TD_MIGRATABLE and not policy.allow_migratable:
        return QuoteError(
            "td-migratable", "the TD is migratable (TDATTRIBUTES bit 29); the policy does not allow_migratable"
        )
    if attrs & _TD_PERFMON and not policy.allow_perfmon:
        return QuoteError(
            "td-perfmon", "the TD exposes PERFMON to the host (TDATTRIBUTES bit 63); the policy does not allow_perfmon"
        )
    if attrs & _TD_RESERVED and not policy.allow_reserved_td_attributes:
        bits = [i for i in range(64) if attrs & _TD_RESERVED & (1 << i)]
        return QuoteError(
            "td-attributes-reserved",
            f"TDATTRIBUTES sets reserved bits {bits}; the policy does not allow_reserved_td_attributes",
        )
    return None
