from __future__ import annotations

import time

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from atlas_log.submission import parse_submission, parse_tee
from atlas_log.tdx.quote import parse_quote
from atlas_log.testing.demo import DEMO_PREDICATE, demo_submission
from atlas_log.testing.simulate import SimulatedPlatform


def test_demo_submissions_are_distinct_and_valid() -> None:
    key = Ed25519PrivateKey.generate()
    a, b = demo_submission(key, 1), demo_submission(key, 1)
    assert a != b  # a fresh artifact digest each time
    parsed = parse_submission(a, int(time.time()))
    assert parsed.extraction.predicate_type == DEMO_PREDICATE
    assert parsed.tee is None
    # Separate runs (the same sequence number) name different artifacts: a search by name finds one.
    names = [parse_submission(s, int(time.time())).extraction.facts[0].name for s in (a, b)]
    assert names[0] != names[1] and all(n and n.startswith("demo-artifact-") for n in names), names


def test_a_demo_submission_with_a_platform_carries_a_bound_quote() -> None:
    platform = SimulatedPlatform.create()
    sub = demo_submission(Ed25519PrivateKey.generate(), 7, platform)
    parsed = parse_submission(sub, int(time.time()))
    request = parse_tee(parsed.tee, len(parsed.signers))
    assert request.quote is not None
    parse_quote(request.quote)
