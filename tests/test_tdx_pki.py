from __future__ import annotations

import pytest

from atlas_log.errors import QuoteError
from atlas_log.tdx.pki import collateral_hex, collateral_time, der_signature, ecdsa_verifies, load_chain


def test_collateral_hex_takes_either_case_and_nothing_else() -> None:
    assert collateral_hex("00906ED5", 4, "fmspc") == bytes.fromhex("00906ed5")
    assert collateral_hex("00906ed5", 4, "fmspc") == bytes.fromhex("00906ed5")
    for bad in ("00906ED", "00906ED500", "00 906ED5", "0x906ED5", "zz906ED5", 1234, None):
        with pytest.raises(QuoteError) as info:
            collateral_hex(bad, 4, "fmspc")
        assert info.value.code == "collateral-malformed"


def test_collateral_time_is_utc_to_the_second() -> None:
    assert collateral_time("2027-01-15T08:00:00Z", "issueDate") == 1_800_000_000
    assert collateral_time("1970-01-01T00:00:00Z", "issueDate") == 0
    for bad in ("1970-01-01T00:00:00", "1970-01-01 00:00:00Z", "1970-01-01T00:00:00.5Z", 0):
        with pytest.raises(QuoteError):
            collateral_time(bad, "issueDate")


def test_a_signature_over_other_data_does_not_verify() -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    key = ec.generate_private_key(ec.SECP256R1())
    r, s = decode_dss_signature(key.sign(b"data", ec.ECDSA(hashes.SHA256())))
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    assert ecdsa_verifies(key.public_key(), der_signature(raw), b"data")
    assert not ecdsa_verifies(key.public_key(), der_signature(raw), b"other")
    assert not ecdsa_verifies(ec.generate_private_key(ec.SECP384R1()).public_key(), der_signature(raw), b"data")


def test_a_chain_that_is_not_pem_is_rejected() -> None:
    with pytest.raises(QuoteError) as info:
        load_chain(b"not a certificate", "PCK chain")
    assert info.value.code == "certificate-chain-invalid"
