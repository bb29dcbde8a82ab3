from __future__ import annotations

import pytest

from atlas_log.errors import QuoteError
from atlas_log.tdx.pck_chain import quote_platform, verify_pck_chain
from atlas_log.tdx.quote import parse_quote
from atlas_log.tdx.verification_cache import VerificationCache
from atlas_log.testing.simulate import SimulatedPlatform


@pytest.fixture(scope="module")
def platform() -> SimulatedPlatform:
    return SimulatedPlatform.create()


def test_the_chain_in_a_quote_verifies_to_its_root(platform: SimulatedPlatform) -> None:
    pem = parse_quote(platform.quote()).pck_chain_pem
    chain = verify_pck_chain(pem, frozenset({platform.root_fingerprint}))
    assert chain.extension.fmspc == platform.fmspc


def test_another_root_is_untrusted(platform: SimulatedPlatform) -> None:
    pem = parse_quote(platform.quote()).pck_chain_pem
    with pytest.raises(QuoteError) as info:
        verify_pck_chain(pem, frozenset({"00" * 32}))
    assert info.value.code == "untrusted-root"


def test_a_chain_missing_a_certificate_is_invalid(platform: SimulatedPlatform) -> None:
    pem = parse_quote(platform.quote()).pck_chain_pem
    first = pem.index(b"-----END CERTIFICATE-----") + len(b"-----END CERTIFICATE-----\n")
    with pytest.raises(QuoteError) as info:
        verify_pck_chain(pem[first:], frozenset({platform.root_fingerprint}))
    assert info.value.code == "certificate-chain-invalid"


def test_quote_platform_names_the_collateral_a_quote_needs(platform: SimulatedPlatform) -> None:
    cache = VerificationCache()
    quote = platform.quote()
    assert quote_platform(quote, [platform.root_fingerprint], cache) == (platform.fmspc.hex().upper(), "platform")
    assert quote_platform(quote, [platform.root_fingerprint], cache) == (platform.fmspc.hex().upper(), "platform")
