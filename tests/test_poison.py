"""A poisoned statement cannot fail anyone else's submission: what PostgreSQL would refuse is a 400 naming the
field at admission, and a batch that still fails inside its transaction is retried without the failing entry."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import secrets
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from atlas_log.entry import IndexRow
from atlas_log.note import Signer
from atlas_log.submission import signed_submission
from atlas_log.tdx.binding import KEY_TAG
from atlas_log.testing.demo import demo_submission
from atlas_log_server.log.sequencer import PendingEntry, Sequenced
from tests.conftest import ServerProcess
from tests.test_api import problem
from tests.test_storage import ORIGIN, _log, pending


@pytest.fixture
def http(server: ServerProcess) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=60)


def statement(
    subject_name: str, predicate_type: str = "https://atlas-log.dev/test/v1", ml_role: str = "model"
) -> bytes:
    # Written by hand: json.dumps would escape the characters this test is about differently.
    return (
        '{"_type":"https://in-toto.io/Statement/v1","predicate":{},"predicateType":"' + predicate_type + '",'
        '"subject":[{"digest":{"sha256":"' + "ab" * 32 + '"},"name":"' + subject_name + '",'
        '"annotations":{"mlRole":"' + ml_role + '"}}]}'
    ).encode()


# Random text: PostgreSQL compresses an index entry before refusing it as too large.
NOISE = secrets.token_urlsafe(4500)
POISON = {
    "nul": (statement("model\\u0000.pt"), "$.subject[0]"),
    "nul-in-ml-role": (statement("model.pt", ml_role="base\\u0000model"), "$.subject[0].annotations.mlRole"),
    "lone-surrogate": (statement("model\\ud800.pt"), "$.subject[0]"),
    "long-predicate-type": (statement("m", "https://x/" + NOISE), "predicateType"),
    "long-name": (statement(NOISE), "$.subject[0]"),
}


@pytest.mark.parametrize("case", sorted(POISON))
def test_strings_postgresql_would_refuse_are_a_400_naming_the_field(
    server: ServerProcess, http: httpx.Client, case: str
) -> None:
    payload, field = POISON[case]
    key = Ed25519PrivateKey.generate()
    honest = [demo_submission(key, i, server.platform) for i in range(8)]
    poisoned = signed_submission(key, payload, server.platform)
    # Sent together, so that without admission checks they would share a batch.
    with ThreadPoolExecutor(9) as pool:
        answers = list(pool.map(lambda s: http.post("/api/v1/entries", json=s), [poisoned, *honest]))
    problem(answers[0], 400, "invalid-statement")
    assert field in answers[0].json()["detail"], answers[0].json()
    assert [r.status_code for r in answers[1:]] == [201] * 8, [r.text for r in answers[1:]]


def test_unstorable_integers_are_a_400(server: ServerProcess, http: httpx.Client) -> None:
    key = Ed25519PrivateKey.generate()
    for index in (2**64 - 1, 2**63, 2**53):
        sub = demo_submission(key, 0)
        sub["tee"] = {"type": "intel-tdx", "binding": KEY_TAG, "keyAttestationEntry": index}
        resp = http.post("/api/v1/entries", json=sub)
        problem(resp, 400, "invalid-tee")
        assert "keyAttestationEntry" in resp.json()["detail"]


async def test_a_batch_that_fails_in_the_database_is_retried_without_the_failing_entry(db_url: str) -> None:
    """Even an entry admission let through (here: built by hand, a NUL in an indexed artifact name) fails only
    its own submission: the others in its batch are logged."""
    repo, seq = await _log(db_url, Signer.generate(ORIGIN))
    seq.max_age_s = 0.2  # everything below lands in one batch
    body = json.dumps({"poison": True}).encode()
    bad = PendingEntry(
        hashlib.sha256(body).digest(),
        body,
        b"{}",
        1,
        rows=(IndexRow("sha256:" + "ab" * 32, "subject", "a\x00b", "$", None),),
    )
    good = [pending(i) for i in range(20)]
    task = asyncio.create_task(seq.run())
    try:
        results: list[Any] = await asyncio.gather(
            *(seq.submit(e) for e in [*good[:10], bad, *good[10:]]), return_exceptions=True
        )
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    size = (await repo.state()).size
    await repo.pool.close()
    assert isinstance(results[10], Exception) and not isinstance(results[10], Sequenced)
    logged = [r for i, r in enumerate(results) if i != 10]
    assert all(isinstance(r, Sequenced) and r.created for r in logged), logged
    assert sorted(r.index for r in logged) == list(range(20))
    assert size == 20
