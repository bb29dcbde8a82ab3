from __future__ import annotations

from dataclasses import replace

import pytest

from atlas_log.errors import QuoteError
from atlas_log.tdx.verified_collateral import collateral_validity, verify_collateral
from atlas_log.testing.simulate import DAY, SimulatedPlatform

NOW = 1_800_000_000


@pytest.fixture(scope="module")
def platform() -> SimulatedPlatform:
    return SimulatedPlatform.create(NOW)


def test_collateral_verifies_and_reports_its_window(platform: SimulatedPlatform) -> None:
    collateral = platform.collateral()
    checked = verify_collateral(collateral, frozenset({platform.root_fingerprint}))
    assert checked.tcb.body["id"] == "TDX" and checked.qe.body["id"] == "TD_QE"
    assert checked.digests == collateral.digests()
    assert checked.pck_crl_ca_der  # the CRL issuer chain was usable
    not_before, not_after = collateral_validity(collateral, [platform.root_fingerprint])
    assert not_before <= NOW < not_after <= NOW + platform.collateral_days * DAY


@pytest.mark.parametrize(
    ("member", "old", "new", "code"),
    [
        ("tcb_info", b'"tcbType":0', b'"tcbType":1', "tcb-info-signature-invalid"),
        ("qe_identity", b'"isvprodid":2', b'"isvprodid":3', "qe-identity-signature-invalid"),
    ],
)
def test_a_changed_document_fails_its_signature(
    platform: SimulatedPlatform, member: str, old: bytes, new: bytes, code: str
) -> None:
    c = platform.collateral()
    tampered = replace(c, **{member: getattr(c, member).replace(old, new)})
    with pytest.raises(QuoteError) as info:
        verify_collateral(tampered, frozenset({platform.root_fingerprint}))
    assert info.value.code == code


def test_collateral_from_another_root_is_untrusted(platform: SimulatedPlatform) -> None:
    with pytest.raises(QuoteError) as info:
        verify_collateral(platform.collateral(), frozenset({"00" * 32}))
    assert info.value.code == "untrusted-root"


def test_a_crl_that_is_not_der_is_invalid(platform: SimulatedPlatform) -> None:
    with pytest.raises(QuoteError) as info:
        verify_collateral(replace(platform.collateral(), pck_crl=b"junk"), frozenset({platform.root_fingerprint}))
    assert info.value.code == "crl-invalid"
