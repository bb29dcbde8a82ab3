"""LogClient against in-memory logs served through httpx.MockTransport (honest, forked, broken)."""

from __future__ import annotations

import asyncio
import base64
import json

import httpx
import pytest

from atlas_log.checkpoint import Checkpoint, sign_checkpoint
from atlas_log.errors import InconsistentLogError, LogAPIError, ProofError
from atlas_log.http import AsyncLogClient, LogClient
from atlas_log.merkle import LeafHash, RootHash
from atlas_log.note import Signer
from tests import reference

ORIGIN = "http.example/log"


class FakeLog:
    def __init__(self, signer: Signer, leaves: list[bytes]) -> None:
        self.signer, self.leaves, self.size = signer, leaves, len(leaves)
        self.broken_proofs = False

    def note(self) -> bytes:
        return sign_checkpoint(
            Checkpoint(ORIGIN, self.size, RootHash(reference.mth(self.leaves[: self.size]))), self.signer
        )

    def handler(self, request: httpx.Request) -> httpx.Response:
        p, q = request.url.path, request.url.params
        if p == "/checkpoint":
            return httpx.Response(200, content=self.note())
        if p == "/api/v1/proofs/consistency":
            proof = reference.proof(int(q["from"]), self.leaves[: int(q["to"])])
            if self.broken_proofs:
                proof = proof[:-1]
            return httpx.Response(200, json={"hashes": [base64.b64encode(h).decode() for h in proof]})
        if p == "/api/v1/proofs/inclusion":
            i, n = int(q["index"]), int(q["treeSize"])
            return httpx.Response(
                200,
                json={
                    "leafHash": base64.b64encode(self.leaves[i]).decode(),
                    "hashes": [base64.b64encode(h).decode() for h in reference.path(i, self.leaves[:n])],
                },
            )
        return httpx.Response(404, json={"type": "https://atlas-log.dev/problems/not-found", "detail": "nope"})


def make(leaves: list[bytes], signer: Signer) -> tuple[FakeLog, httpx.Client]:
    log = FakeLog(signer, leaves)
    return log, httpx.Client(base_url="http://log", transport=httpx.MockTransport(log.handler))


SIGNER = Signer.generate(ORIGIN)
LEAVES = [reference.leaf(str(i).encode()) for i in range(50)]


def test_client_follows_an_honest_log(tmp_path: object) -> None:
    log, http = make(LEAVES, SIGNER)
    log.size = 10
    client = LogClient(http, SIGNER.verifier.vkey)
    assert client.checkpoint()[0].size == 10
    log.size = 50
    cp, _ = client.checkpoint()
    assert cp.size == 50
    client.verify_inclusion(LeafHash(LEAVES[7]), 7, cp)
    with pytest.raises(LogAPIError):
        client.verify_inclusion(LeafHash(LEAVES[8]), 7, cp)


def test_client_catches_a_fork_with_evidence() -> None:
    log, http = make(LEAVES, SIGNER)
    log.size = 10
    client = LogClient(http, SIGNER.verifier)
    _, first = client.checkpoint()
    log.leaves = [*LEAVES[:3], reference.leaf(b"evil"), *LEAVES[4:]]
    log.size = 20
    with pytest.raises(InconsistentLogError) as e:
        client.checkpoint()
    assert e.value.old_checkpoint == first
    assert e.value.new_checkpoint == log.note()
    assert e.value.proof == reference.proof(10, log.leaves[:20])
    assert client.trusted.size == 10


def test_client_refuses_rollback_and_bad_proofs() -> None:
    log, http = make(LEAVES, SIGNER)
    client = LogClient(http, SIGNER.verifier)
    log.size = 30
    client.checkpoint()
    log.size = 20
    with pytest.raises(InconsistentLogError, match="rollback"):
        client.checkpoint()
    log.size, log.broken_proofs = 50, True
    with pytest.raises(InconsistentLogError):
        client.checkpoint()
    assert client.trusted.size == 30


def test_errors_are_log_api_errors() -> None:
    _, http = make(LEAVES, SIGNER)
    client = LogClient(http, SIGNER.verifier)
    with pytest.raises(LogAPIError) as e:
        client.get_entry(3)
    assert e.value.status == 404 and e.value.problem_type == "https://atlas-log.dev/problems/not-found"
    garbage = httpx.Client(
        base_url="http://log", transport=httpx.MockTransport(lambda r: httpx.Response(200, content=b"<html>"))
    )
    with pytest.raises(LogAPIError):
        LogClient(garbage, SIGNER.verifier).consistency_proof(1, 2)
    # A hostile log's answer nested deeper than the JSON limits (Python's own parser would raise
    # RecursionError, a foreign exception) or carrying an out-of-range number.
    for body in (b"[" * 100_000 + b"]" * 100_000, b'{"hashes": [], "n": 1e400}'):
        hostile = httpx.Client(
            base_url="http://log", transport=httpx.MockTransport(lambda r, b=body: httpx.Response(200, content=b))
        )
        with pytest.raises(LogAPIError):
            LogClient(hostile, SIGNER.verifier).consistency_proof(1, 2)
    down = httpx.Client(
        base_url="http://log",
        transport=httpx.MockTransport(lambda r: (_ for _ in ()).throw(httpx.ConnectError("down"))),
    )
    with pytest.raises(LogAPIError):
        LogClient(down, SIGNER.verifier).checkpoint()


def test_async_twin_agrees() -> None:
    log = FakeLog(SIGNER, LEAVES)

    async def run() -> int:
        async with httpx.AsyncClient(base_url="http://log", transport=httpx.MockTransport(log.handler)) as http:
            client = AsyncLogClient(http, SIGNER.verifier)
            log.size = 5
            await client.checkpoint()
            log.size = 40
            cp, _ = await client.checkpoint()
            await client.verify_inclusion(LeafHash(LEAVES[39]), 39, cp)
            log.leaves = list(reversed(LEAVES))
            log.size = 45
            with pytest.raises(InconsistentLogError):
                await client.checkpoint()
            return cp.size

    assert asyncio.run(run()) == 40
    assert json.dumps({"ok": True})


def test_inclusion_mismatch_is_proof_error() -> None:
    _, http = make(LEAVES, SIGNER)
    client = LogClient(http, SIGNER.verifier)
    cp, _ = client.checkpoint()
    wrong = Checkpoint(ORIGIN, cp.size, RootHash(bytes(32)))
    with pytest.raises(ProofError):
        client.verify_inclusion(LeafHash(LEAVES[1]), 1, wrong)
