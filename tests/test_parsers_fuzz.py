"""Hypothesis fuzzing of every parser a hostile client or log can reach: notes, checkpoints, DSSE envelopes,
statements, Sigstore bundles, submissions and PCS responses. Each returns a value or raises the typed
:class:`atlas_log.errors.Error` family; nothing else escapes, and nothing hangs."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from atlas_log.bundle import parse_bundle
from atlas_log.checkpoint import parse_checkpoint
from atlas_log.dsse import parse_envelope
from atlas_log.errors import Error
from atlas_log.intoto import extract
from atlas_log.note import parse_note
from atlas_log.submission import parse_submission, parse_tee
from atlas_log.tdx.collateral import COLLATERAL_PARTS, Collateral, raw_members
from atlas_log.tdx.verified_collateral import collateral_validity
from atlas_log.testing.simulate import SimulatedPlatform

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)


def _typed(call: Any, *args: Any) -> None:
    with contextlib.suppress(Error):  # a typed rejection is fine; anything else fails the test
        call(*args)


@FUZZ
@given(st.binary(max_size=400) | st.text(max_size=400).map(str.encode))
def test_notes(data: bytes) -> None:
    _typed(parse_note, data)


@FUZZ
@given(st.text(max_size=300))
def test_checkpoints(text: str) -> None:
    _typed(parse_checkpoint, text)


@FUZZ
@given(
    json_values | st.fixed_dictionaries({"payloadType": json_values, "payload": json_values, "signatures": json_values})
)
def test_envelopes(obj: Any) -> None:
    _typed(parse_envelope, obj)


@FUZZ
@given(st.sampled_from(["application/vnd.in-toto+json", "text/plain"]), json_values)
def test_statements(payload_type: str, statement: Any) -> None:
    _typed(extract, payload_type, json.dumps(statement).encode())


@FUZZ
@given(
    json_values
    | st.fixed_dictionaries(
        {"mediaType": json_values, "verificationMaterial": json_values, "dsseEnvelope": json_values}
    )
)
def test_bundles(obj: Any) -> None:
    _typed(parse_bundle, obj)


@FUZZ
@given(json_values | st.binary(max_size=200), st.integers(min_value=0, max_value=17))
def test_submissions_and_tee_blocks(obj: Any, signers: int) -> None:
    _typed(parse_submission, obj, 1_800_000_000)
    _typed(parse_tee, obj, signers)


_PLATFORM = SimulatedPlatform.create()
_COLLATERAL = _PLATFORM.collateral()


@FUZZ
@given(st.sampled_from(COLLATERAL_PARTS), st.data())
def test_pcs_responses(part: str, data: st.DataObject) -> None:
    """One collateral member replaced by a mutation of itself (or by arbitrary bytes)."""
    original: bytes = getattr(_COLLATERAL, part)
    mutated = data.draw(
        st.binary(max_size=300)
        | st.tuples(st.integers(0, max(0, len(original) - 1)), st.integers(0, 255)).map(
            lambda p: original[: p[0]] + bytes([p[1]]) + original[p[0] + 1 :]
        )
    )
    members = {name: getattr(_COLLATERAL, name) for name in COLLATERAL_PARTS}
    members[part] = mutated
    _typed(collateral_validity, Collateral(**members), [_PLATFORM.root_fingerprint])
    _typed(raw_members, mutated, "tcbInfo")
