"""TDATTRIBUTES under a relying party's policy (step M, in part)."""

from __future__ import annotations

import pytest

from atlas_log.tdx.policy import Policy
from atlas_log.tdx.quote import parse_quote
from atlas_log.tdx.td_attributes import td_attributes_problem
from tests.vectors import vector_files, vectors_dir

CASES = sorted({p.parent.name for p in vector_files("tdx", pattern="case.json")})


def _attrs(*bits: int) -> bytes:
    """TDATTRIBUTES with exactly these bits set (the field is a little-endian u64)."""
    return sum(1 << b for b in bits).to_bytes(8, "little")


@pytest.mark.parametrize(
    ("bits", "code"),
    [
        ((28,), None),
        ((28, 30, 31), None),  # PKS and KL only add protections
        ((0, 28), "td-debug"),
        ((), "td-sept-ve-not-disabled"),
        ((28, 29), "td-migratable"),
        ((28, 63), "td-perfmon"),
        ((27, 28), "td-attributes-reserved"),
    ],
)
def test_default_policy(bits: tuple[int, ...], code: str | None) -> None:
    problem = td_attributes_problem(_attrs(*bits), Policy())
    assert (problem.code if problem else None) == code


def test_debug_is_rejected_whatever_the_policy() -> None:
    lax = Policy.from_json(
        {
            "require_sept_ve_disable": False,
            "allow_migratable": True,
            "allow_perfmon": True,
            "allow_reserved_td_attributes": True,
        }
    )
    assert td_attributes_problem(_attrs(1, 29, 63), lax) is None
    problem = td_attributes_problem(_attrs(0), lax)
    assert problem is not None and problem.code == "td-debug"


def test_attributes_are_eight_bytes() -> None:
    problem = td_attributes_problem(bytes(7), Policy())
    assert problem is not None and problem.code == "quote-malformed"


def test_real_quotes_td_attributes_under_the_default_policy() -> None:
    # The real samples: v4-uptodate and v5 carry SEPT_VE_DISABLE only; the SPR sample carries PKS only, with
    # SEPT_VE_DISABLE clear (its guest may disable SEPT #VE at run time, which the quote cannot show), so the
    # default policy rejects it at step M and a policy with require_sept_ve_disable=false accepts its attributes.
    vectors_dir("tdx")  # skips when the real samples are absent
    found = {}
    for name in CASES:
        quote = (vectors_dir("tdx", name) / "quote.bin").read_bytes()
        attrs = parse_quote(quote).body.td_attributes
        problem = td_attributes_problem(attrs, Policy())
        found[name] = (attrs.hex(), None if problem is None else problem.code)
    assert found == {
        "v4-spr-no-matching-tcb-level": ("0000004000000000", "td-sept-ve-not-disabled"),
        "v4-uptodate": ("0000001000000000", None),
        "v5-no-matching-tcb-level": ("0000001000000000", None),
    }
    relaxed = Policy.from_json({"require_sept_ve_disable": False})
    assert td_attributes_problem(bytes.fromhex("0000004000000000"), relaxed) is None
