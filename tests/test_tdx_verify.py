"""TDX verification: every real case, its validity window, cache equivalence, and simulated rejections."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from atlas_log.tdx.collateral import Collateral, collateral_from_dir
from atlas_log.tdx.policy import Policy
from atlas_log.tdx.verification import verify_quote
from atlas_log.tdx.verification_cache import VerificationCache
from atlas_log.testing.simulate import SimulatedPlatform, TcbLevel
from tests.vectors import vector_files, vectors_dir

CASES = sorted({p.parent.name for p in vector_files("tdx", pattern="case.json")})
NOW = 1_800_000_000


def _case(name: str) -> tuple[bytes, Collateral, dict]:  # type: ignore[type-arg]
    d = vectors_dir("tdx", name)
    return (d / "quote.bin").read_bytes(), collateral_from_dir(d), json.loads((d / "case.json").read_text())


def test_real_cases_present() -> None:
    vectors_dir("tdx")
    assert len(CASES) == 3


@pytest.mark.parametrize("name", CASES)
def test_real_case_verdict_inside_window(name: str) -> None:
    quote, coll, case = _case(name)
    lo, hi = case["valid_from"], case["valid_until"]
    for now in (lo, (lo + hi) // 2, hi - 1):
        v = verify_quote(quote, coll, now)
        assert v.accept == case["expect"]["accept"], (now, v)
        if v.accept:
            assert v.tcb_status == case["expect"]["tcb_status"]
            assert list(v.advisory_ids) == case["expect"]["advisory_ids"]
            assert v.collateral_expiry == hi
            assert set(v.collateral_digests) == {
                "tcb_info",
                "tcb_info_issuer_chain",
                "qe_identity",
                "qe_identity_issuer_chain",
                "pck_crl",
                "pck_crl_issuer_chain",
                "root_ca_crl",
            }
        else:
            assert v.code == "tcb-level-not-found", v
        assert v.fmspc and v.td is not None and v.td.mr_td


@pytest.mark.parametrize("name", CASES)
def test_real_case_rejected_outside_window(name: str) -> None:
    quote, coll, case = _case(name)
    late = verify_quote(quote, coll, case["valid_until"])
    early = verify_quote(quote, coll, case["valid_from"] - 1)
    assert not late.accept and late.code in ("collateral-expired", "certificate-expired")
    assert not early.accept and early.code in ("collateral-not-yet-valid", "certificate-not-yet-valid")


@pytest.mark.parametrize("name", CASES)
def test_cache_never_changes_a_verdict(name: str) -> None:
    quote, coll, case = _case(name)
    cache = VerificationCache()
    for now in (case["valid_from"] - 1, case["valid_from"], case["valid_until"] - 1, case["valid_until"]):
        for _ in range(2):
            assert verify_quote(quote, coll, now, cache=cache) == verify_quote(quote, coll, now)


def test_tampered_real_collateral_and_quote_rejected() -> None:
    quote, coll, case = _case("v4-uptodate")
    now = case["valid_from"] + 1000
    spaced = coll.tcb_info.replace(b'"version":3', b'"version": 3')
    assert verify_quote(quote, replace(coll, tcb_info=spaced), now).code == "tcb-info-signature-invalid"
    flipped = bytearray(quote)
    flipped[600] ^= 1  # inside REPORTDATA
    assert verify_quote(bytes(flipped), coll, now).code == "quote-signature-invalid"
    other_root = SimulatedPlatform.create(now)
    assert verify_quote(quote, coll, now, roots=[other_root.root_fingerprint]).code == "untrusted-root"


# --- simulated platform: one test per rejection reason, each with its own code ------------------------


@pytest.fixture(scope="module")
def platform() -> SimulatedPlatform:
    return SimulatedPlatform.create(NOW)


def _verify(
    p: SimulatedPlatform,
    quote: bytes,
    coll: Collateral | None = None,
    now: int = NOW + 3600,
    policy: Policy | None = None,
    roots: list[str] | None = None,
) -> tuple[bool, str | None]:
    args = (quote, coll or p.collateral(), now, policy)
    rs = roots or [p.root_fingerprint]
    v = verify_quote(*args, roots=rs)
    # Every simulated case also checks that caches never change a verdict (cold, then warm).
    cache = VerificationCache()
    assert verify_quote(*args, roots=rs, cache=cache) == v == verify_quote(*args, roots=rs, cache=cache)
    return v.accept, v.code


def _attrs(*bits: int) -> bytes:
    """TDATTRIBUTES with exactly these bits set (the field is a little-endian u64)."""
    return sum(1 << b for b in bits).to_bytes(8, "little")


def _flip(data: bytes, offset: int) -> bytes:
    b = bytearray(data)
    b[offset] ^= 0x01
    return bytes(b)


def test_simulated_quotes_verify(platform: SimulatedPlatform) -> None:
    assert _verify(platform, platform.quote()) == (True, None)
    assert _verify(platform, platform.quote(version=5, body_type=2)) == (True, None)
    assert _verify(platform, platform.quote(version=5, body_type=3)) == (True, None)


def _tcb_info_bad_signature(p: SimulatedPlatform) -> tuple[bool, str | None]:
    c = p.collateral()
    return _verify(p, p.quote(), replace(c, tcb_info=c.tcb_info.replace(b'"tcbType":0', b'"tcbType":1')))


def _qe_identity_bad_signature(p: SimulatedPlatform) -> tuple[bool, str | None]:
    c = p.collateral()
    return _verify(p, p.quote(), replace(c, qe_identity=c.qe_identity.replace(b'"isvprodid":2', b'"isvprodid":3')))


REJECTIONS = {
    "untrusted-root": lambda p: _verify(p, p.quote(), roots=["00" * 32]),
    "collateral-expired": lambda p: _verify(p, p.quote(), now=NOW + 31 * 86400),
    "collateral-not-yet-valid": lambda p: _verify(p, p.quote(), p.collateral(NOW + 7200), now=NOW + 3600),
    "certificate-expired": lambda p: _verify(
        p, p.quote(), p.collateral(NOW + 11 * 365 * 86400), now=NOW + 11 * 365 * 86400 + 10
    ),
    "pck-revoked": lambda p: _verify(p, p.quote(), p.variant(revoked_pck=True).collateral()),
    "pck-ca-revoked": lambda p: _verify(p, p.quote(), p.variant(revoked_pck_ca=True).collateral()),
    "tcb-info-signature-invalid": _tcb_info_bad_signature,
    "qe-identity-signature-invalid": _qe_identity_bad_signature,
    "qe-identity-mismatch": lambda p: _verify(p, p.quote(qe_mrsigner=bytes(32))),
    "qe-report-signature-invalid": lambda p: _verify(p, _flip(p.quote(), 1000 + 0)),
    "attestation-key-binding-invalid": lambda p: _verify(p, p.quote(bind_attestation_key=False)),
    "quote-signature-invalid": lambda p: _verify(p, _flip(p.quote(), 600)),
    "td-debug": lambda p: _verify(p, p.quote(td_attributes=bytes.fromhex("0100001000000000"))),
    # TD attributes beyond DEBUG (u64 little-endian; bit 28 SEPT_VE_DISABLE is the simulator's default).
    "td-sept-ve-not-disabled": lambda p: _verify(p, p.quote(td_attributes=_attrs())),
    "td-migratable": lambda p: _verify(p, p.quote(td_attributes=_attrs(28, 29))),
    "td-perfmon": lambda p: _verify(p, p.quote(td_attributes=_attrs(28, 63))),
    "td-attributes-reserved": lambda p: _verify(p, p.quote(td_attributes=_attrs(28, 40))),
    "tcb-level-not-found": lambda p: _verify(
        p, p.quote(), p.variant(tcb_levels=(TcbLevel((9,) * 16, 99, (0,) * 16, "UpToDate"),)).collateral()
    ),
    "tcb-status-not-allowed": lambda p: _verify(
        p, p.quote(), p.variant(tcb_levels=(TcbLevel(p.sgx_svns, p.pcesvn, (0,) * 16, "OutOfDate"),)).collateral()
    ),
    "advisory-denied": lambda p: _verify(
        p,
        p.quote(),
        p.variant(tcb_levels=(TcbLevel(p.sgx_svns, p.pcesvn, (0,) * 16, "UpToDate", ("SA-1",)),)).collateral(),
        policy=Policy(denied_advisories=frozenset({"SA-1"})),
    ),
    "mrtd-not-allowed": lambda p: _verify(p, p.quote(), policy=Policy(mr_td=frozenset({"ab" * 48}))),
    "rtmr-not-allowed": lambda p: _verify(p, p.quote(), policy=Policy(rtmr=(None, None, frozenset({"cd" * 48}), None))),
    "mrconfigid-not-allowed": lambda p: _verify(p, p.quote(), policy=Policy(mr_config_id=frozenset({"ef" * 48}))),
    "tcb-evaluation-too-old": lambda p: _verify(p, p.quote(), policy=Policy(min_tcb_evaluation_data_number=18)),
    "tdx-module-mismatch": lambda p: _verify(p, p.quote(tee_tcb_svn=bytes([3, 7, 2]) + bytes(13))),
    "tdx-module-tcb-not-supported": lambda p: _verify(p, p.quote(tee_tcb_svn=bytes([1, 1, 2]) + bytes(13))),
    "tcb-info-mismatch": lambda p: _verify(p, p.quote(), p.variant(fmspc=bytes(6)).collateral()),
    "quote-malformed": lambda p: _verify(p, p.quote()[:700]),
}


@pytest.mark.parametrize("code", sorted(REJECTIONS))
def test_simulated_rejection(platform: SimulatedPlatform, code: str) -> None:
    accept, got = REJECTIONS[code](platform)
    assert (accept, got) == (False, code)


def test_at_least_fifteen_distinct_rejections() -> None:
    assert len(REJECTIONS) >= 15


def test_outofdate_is_accepted_when_policy_allows(platform: SimulatedPlatform) -> None:
    p = platform.variant(tcb_levels=(TcbLevel(platform.sgx_svns, platform.pcesvn, (0,) * 16, "OutOfDate", ("A",)),))
    v = verify_quote(
        p.quote(),
        p.collateral(),
        NOW + 10,
        Policy(allowed_statuses=frozenset({"OutOfDate"})),
        roots=[p.root_fingerprint],
    )
    assert v.accept and v.tcb_status == "OutOfDate" and v.advisory_ids == ("A",)


def test_relaunch_advised_for_tdx15(platform: SimulatedPlatform) -> None:
    # Launched with an old module (matches only the OutOfDate level), now updated in place (SVN2 current).
    old = bytes([3, 1, 1]) + bytes(13)
    p = platform.variant(
        tcb_levels=(
            TcbLevel(platform.sgx_svns, platform.pcesvn, (0, 0, 2) + (0,) * 13, "UpToDate"),
            TcbLevel(platform.sgx_svns, platform.pcesvn, (0,) * 16, "OutOfDate"),
        )
    )
    q = p.quote(version=5, body_type=3, tee_tcb_svn=old, tee_tcb_svn2=platform.tee_tcb_svn)
    v = verify_quote(
        q,
        p.collateral(),
        NOW + 10,
        Policy(allowed_statuses=frozenset({"TDRelaunchAdvised"})),
        roots=[p.root_fingerprint],
    )
    assert v.accept and v.tcb_status == "TDRelaunchAdvised"


@pytest.mark.parametrize(
    ("bits", "member"),
    [((), "require_sept_ve_disable"), ((28, 29), "allow_migratable"), ((28, 63), "allow_perfmon")],
)
def test_td_attribute_rejections_are_policy(platform: SimulatedPlatform, bits: tuple[int, ...], member: str) -> None:
    # Rejected by default (above); a policy file that opts in accepts exactly that attribute and no other.
    quote = platform.quote(td_attributes=_attrs(*bits))
    opt_in = Policy.from_json({member: member.startswith("allow_")})
    assert _verify(platform, quote, policy=opt_in) == (True, None)
    assert _verify(platform, platform.quote(td_attributes=_attrs(28, 40)), policy=opt_in)[1] == "td-attributes-reserved"
    assert _verify(platform, platform.quote(td_attributes=_attrs(0, 28)), policy=opt_in)[1] == "td-debug"


def test_reserved_td_attributes_are_policy(platform: SimulatedPlatform) -> None:
    # Bits 1-27 and 32-62 are reserved in the TDX module ABI (reference/tdx.md §1.3); an operator running a
    # newer module whose TDs set one (e.g. LASS, bit 27) can allow them explicitly.
    quote = platform.quote(td_attributes=_attrs(27, 28))
    assert _verify(platform, quote)[1] == "td-attributes-reserved"
    assert _verify(platform, quote, policy=Policy.from_json({"allow_reserved_td_attributes": True})) == (True, None)
    # PKS (30) and KL (31) are hardening features, allowed by default.
    assert _verify(platform, platform.quote(td_attributes=_attrs(28, 30, 31))) == (True, None)


@pytest.mark.parametrize("name", CASES)
def test_cli_tdx_verify(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from atlas_log import cli

    d = vectors_dir("tdx", name)
    case = json.loads((d / "case.json").read_text())
    now = (case["valid_from"] + case["valid_until"]) // 2
    rc = cli.main(["tdx", "verify", str(d / "quote.bin"), "--collateral", str(d), "--at", str(now), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == (0 if case["expect"]["accept"] else 1)
    assert out["accept"] == case["expect"]["accept"]
    assert {"accept", "tcb_status", "advisory_ids", "fmspc", "reason"} <= set(out)
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"mr_td": ["00" * 48]}))
    rc = cli.main(
        ["tdx", "verify", str(d / "quote.bin"), "--collateral", str(d), "--at", str(now), "--policy", str(policy)]
    )
    assert rc == 1
    assert "REJECTED" in capsys.readouterr().out
