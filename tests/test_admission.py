"""Where admission checks a submission: on the event loop when that is cheap, in a worker thread otherwise.
The choice never changes what is accepted (every admission test runs through it); these pin the choice."""

from __future__ import annotations

import base64
import json

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from atlas_log.testing import SimulatedGpu
from atlas_log.testing.demo import demo_submission
from atlas_log.testing.simulate import SimulatedPlatform
from atlas_log_server.admission import INLINE_MAX_BYTES, _cheap_to_decode, _light


def _inline(body: object) -> bool:
    raw = json.dumps(body).encode()
    return _cheap_to_decode(raw) and _light(json.loads(raw))


def test_attested_entries_are_checked_inline_whatever_evidence_rides_beside_them() -> None:
    platform = SimulatedPlatform.create()
    gpu = SimulatedGpu.create()
    key = Ed25519PrivateKey.generate()
    tdx = demo_submission(key, 1, platform)
    composite = demo_submission(key, 1, platform, gpus=gpu)
    assert len(json.dumps(composite)) > INLINE_MAX_BYTES  # the evidence alone takes it past the old bound
    assert _inline(tdx) and _inline(composite)


def test_heavy_submissions_go_to_a_worker_thread() -> None:
    body = demo_submission(Ed25519PrivateKey.generate(), 1)
    big_statement = json.loads(json.dumps(body))
    big_statement["dsseEnvelope"]["payload"] = base64.b64encode(b"x" * INLINE_MAX_BYTES).decode()
    dense = {**body, "annotations": {f"k{i}": [1, 2, 3] for i in range(2000)}}  # many small tokens
    huge = {**body, "annotations": {"note": "x" * 200_000}}
    many = json.loads(json.dumps(body))
    many["dsseEnvelope"]["signatures"] = many["dsseEnvelope"]["signatures"] * 3
    # A disclosure is base64 of JSON: dense JSON inside it is invisible to the body's token count.
    inner = base64.urlsafe_b64encode(json.dumps(["salt", [{}] * 30_000]).encode()).decode().rstrip("=")
    hidden = {**body, "disclosures": [inner]}
    scattered = {**body, "disclosures": ["e30"] * 5000}
    assert _inline(body) and _inline({**body, "disclosures": ["e30"] * 10})
    for heavy in (big_statement, dense, huge, many, hidden, scattered):
        assert not _inline(heavy)
