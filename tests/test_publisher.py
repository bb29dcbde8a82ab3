"""The publisher, with a real server process: under ``ATLAS_REQUIRE_FRESH_NONCE`` an idle log keeps offering a
root young enough to be a quote's nonce, so a pipeline can always obtain a fresh nonce."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from atlas_log.checkpoint import open_checkpoint
from atlas_log.merkle import EMPTY_ROOT
from atlas_log.note import Verifier
from atlas_log.testing.demo import demo_submission
from tests.conftest import ServerProcess

MAX_AGE_S = 4


def test_an_idle_log_still_offers_a_fresh_nonce(db_url: str, tmp_path: Path) -> None:
    """The attack on availability: with fresh nonces required, a log that sees no submission for longer
    than the nonce age has only stale roots to offer, so every later submission is refused, forever.
    The log must re-publish its (unchanged) checkpoint often enough that ``/checkpoint`` always names a
    root that admission counts as fresh; a root that is not re-published still goes stale."""
    server = ServerProcess(
        db_url,
        tmp_path / "data",
        env={
            "ATLAS_REQUIRE_FRESH_NONCE": "true",
            "ATLAS_NONCE_MAX_AGE_S": str(MAX_AGE_S),
            "ATLAS_CHECKPOINT_INTERVAL_S": "0.2",
        },
    )
    try:
        verifier = Verifier.from_vkey(server.vkey)
        key = Ed25519PrivateKey.generate()

        def submit(n: int, nonce: bytes | None = None) -> httpx.Response:
            if nonce is None:  # what a pipeline does: quote against the root of the current checkpoint
                nonce = open_checkpoint(httpx.get(server.url + "/checkpoint").content, verifier).root_hash
            return httpx.post(server.url + "/api/v1/entries", json=demo_submission(key, n, server.platform, nonce))

        first = submit(1)
        assert first.status_code == 201, first.text
        time.sleep(MAX_AGE_S + 2)  # idle for longer than the nonce may be old
        for n in (2, 3):  # and again after the log grew and went idle once more
            later = submit(n)
            assert later.status_code == 201, later.text
            time.sleep(MAX_AGE_S + 2)
        stale = submit(4, EMPTY_ROOT)  # the empty tree's root is long superseded: never re-published
        assert stale.status_code == 422
        problem: dict[str, Any] = stale.json()
        assert problem["type"].endswith("/tdx-nonce-stale"), problem
    finally:
        server.stop()
