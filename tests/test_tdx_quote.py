"""Quote parsing, and fuzzing of the parser and verifier: only verdicts or typed errors come out."""

from __future__ import annotations

import contextlib
import hashlib
import random
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from atlas_log.errors import QuoteError
from atlas_log.tdx.quote import attestation_id, parse_quote
from atlas_log.tdx.verdict import Verdict
from atlas_log.tdx.verification import verify_quote
from atlas_log.testing.simulate import SimulatedPlatform
from tests.vectors import vector_files

NOW = 1_800_000_000
PLATFORM = SimulatedPlatform.create(NOW)
COLLATERAL = PLATFORM.collateral()
QUOTES = [PLATFORM.quote(bytes(range(64))), PLATFORM.quote(version=5, body_type=3)]
REAL = [p.read_bytes() for p in vector_files("tdx", pattern="quote.bin")]


def test_fields_land_where_the_layout_says() -> None:
    rd = bytes(range(64))
    q = parse_quote(PLATFORM.quote(rd, mr_td=b"\x11" * 48, td_attributes=bytes(8)))
    assert q.version == 4 and q.body_type == 2 and len(q.signed) == 632
    assert q.body.report_data == rd and q.body.mr_td == b"\x11" * 48 and not q.body.debug
    q5 = parse_quote(PLATFORM.quote(rd, version=5, body_type=3))
    assert len(q5.signed) == 702 and q5.body.tee_tcb_svn2 is not None and q5.body.report_data == rd
    assert len(parse_quote(PLATFORM.quote(version=5, body_type=2)).signed) == 638


def test_padding_is_not_part_of_a_quote() -> None:
    """Bytes after the signature data are unsigned: zero padding is cut off (one quote, one identity), and
    anything else is refused where the log admits quotes."""
    q = QUOTES[0]
    assert parse_quote(q).raw == q
    for padded in (q + bytes(1), q + bytes(3065)):
        assert parse_quote(padded, zero_padding_only=True).raw == q
    assert parse_quote(q + b"\x00\x01").raw == q  # Intel's verifier ignores them; so does plain parsing
    with pytest.raises(QuoteError, match="zero padding"):
        parse_quote(q + b"\x00\x01", zero_padding_only=True)
    for raw in REAL:  # the go-tdx-guest sample ends in "extra bytes(only for testing purpose)"
        quote = parse_quote(raw)
        assert raw.startswith(quote.raw)
        if raw[len(quote.raw) :].strip(b"\0"):
            with pytest.raises(QuoteError):
                parse_quote(raw, zero_padding_only=True)


def test_real_quotes_parse() -> None:
    for raw in REAL:
        q = parse_quote(raw)
        assert q.version in (4, 5) and len(q.qe_auth_data) == 32 and q.pck_chain_pem.startswith(b"-----BEGIN")


def test_zero_padding_is_tolerated() -> None:
    assert parse_quote(QUOTES[0] + bytes(3000)).signed == parse_quote(QUOTES[0]).signed


@pytest.mark.parametrize(
    "mutate",
    [
        lambda q: q[:40],
        lambda q: q[:632],
        lambda q: struct.pack("<H", 3) + q[2:],
        lambda q: q[:2] + struct.pack("<H", 3) + q[4:],
        lambda q: q[:4] + struct.pack("<I", 0) + q[8:],
        lambda q: q[:632] + struct.pack("<I", 10**6) + q[636:],
        lambda q: q[: 632 + 4 + 128] + struct.pack("<H", 5) + q[632 + 4 + 130 :],
        lambda q: q[: 632 + 4 + 130] + struct.pack("<I", 1) + q[632 + 4 + 134 :],
    ],
)
def test_malformed_quotes_are_typed_errors(mutate) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(QuoteError) as e:
        parse_quote(mutate(QUOTES[0]))
    assert e.value.code == "quote-malformed"


def test_v5_body_size_must_match_type() -> None:
    q = QUOTES[1]
    with pytest.raises(QuoteError):
        parse_quote(q[:50] + struct.pack("<I", 584) + q[54:])


def _check(data: bytes) -> None:
    with contextlib.suppress(QuoteError):
        parse_quote(data)
    v = verify_quote(data, COLLATERAL, NOW + 10, roots=[PLATFORM.root_fingerprint])
    assert isinstance(v, Verdict)
    if v.accept:
        assert data[:632] == QUOTES[0][:632] or data[:702] == QUOTES[1][:702]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=6000))
def test_fuzz_random_bytes(data: bytes) -> None:
    _check(data)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(range(len(QUOTES))),
    st.lists(st.tuples(st.integers(0, 5999), st.integers(0, 255)), min_size=1, max_size=8),
    st.integers(0, 6000),
)
def test_fuzz_mutated_quotes(which: int, edits: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(QUOTES[which])
    for off, val in edits:
        if off < len(data):
            data[off] = val
    _check(bytes(data[: max(cut, 1)]) if cut < len(data) else bytes(data))


def test_mutations_of_real_quotes_never_escape() -> None:
    rng = random.Random(7)
    for raw in REAL:
        for _ in range(300):
            data = bytearray(raw)
            for _ in range(rng.randint(1, 4)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            if rng.random() < 0.2:
                data = data[: rng.randrange(len(data))]
            _check(bytes(data))


@pytest.mark.parametrize(("version", "body_type"), [(4, 2), (5, 2), (5, 3)])
def test_attestation_id_is_the_hash_of_what_the_attestation_key_signed(version: int, body_type: int) -> None:
    """One attestation is the bytes its key signed: the identity ignores the (unsigned) signature data."""
    platform = SimulatedPlatform.create(1_700_000_000)
    quote = platform.quote(bytes(64), version=version, body_type=body_type)
    assert attestation_id(quote) == hashlib.sha256(parse_quote(quote).signed).digest()
    assert attestation_id(quote + bytes(16)) == attestation_id(quote)
    other = platform.quote(bytes([1]) + bytes(63), version=version, body_type=body_type)
    assert attestation_id(other) != attestation_id(quote)
