"""LogClient and AsyncLogClient (atlas_log.client): in-memory logs through httpx.MockTransport (honest, forked, broken),
and real logs behind a tampering proxy."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from atlas_log.checkpoint import Checkpoint, sign_checkpoint
from atlas_log.client import AsyncLogClient, LogClient
from atlas_log.cosignature import CosignatureVerifier
from atlas_log.entry import Entry, parse_leaf
from atlas_log.errors import (
    InconsistentLogError,
    LogAPIError,
    LogUnreachableError,
    ProofError,
    ReceiptMismatchError,
    SignatureError,
    VerificationError,
)
from atlas_log.merkle import LeafHash, RootHash, leaf_hash
from atlas_log.note import Signer
from atlas_log.receipt import Receipt, SubmittedEntry, verify_leaf_for
from atlas_log.submission import intoto_statement, signed_submission, spki_der, tdx_tee
from atlas_log.tdx.binding import ZERO_NONCE, payload_report_data
from atlas_log.testing.demo import demo_submission
from atlas_log.transport import RetryPolicy
from tests import reference
from tests.conftest import ServerProcess
from tests.proxy import TamperingProxy

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
        client.entry(3)
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
    started = time.monotonic()
    with pytest.raises(LogUnreachableError):
        LogClient(down, SIGNER.verifier, retry=RetryPolicy(deadline_s=1)).checkpoint()
    assert time.monotonic() - started < 5  # retried within its deadline, then gave up


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


# --- A hostile log answering submissions: a real server behind a real tampering HTTP proxy ---------------------


@pytest.fixture
def hostile(db_url: str, tmp_path: Path) -> Iterator[tuple[ServerProcess, TamperingProxy, LogClient]]:
    """A real log (which also admits unattested entries, so an attestation can be dropped) behind a proxy."""
    server = ServerProcess(db_url, tmp_path / "data", env={"ATLAS_ALLOW_UNATTESTED": "true"})
    proxy = TamperingProxy(server.url)
    try:
        with httpx.Client(base_url=proxy.url, timeout=60) as http:
            yield server, proxy, LogClient(http, server.vkey)
    finally:
        proxy.close()
        server.stop()


def test_submit_accepts_the_honest_receipt_and_its_resubmission(
    hostile: tuple[ServerProcess, TamperingProxy, LogClient],
) -> None:
    server, _, client = hostile
    key = Ed25519PrivateKey.generate()
    sub = demo_submission(key, 1, server.platform)
    first = client.submit(sub)
    again = client.submit(sub)  # the existing entry's receipt (200), checked the same way
    assert again.log_index == first.log_index and client.trusted.size >= 1


def test_submit_rejects_a_receipt_for_another_entry(hostile: tuple[ServerProcess, TamperingProxy, LogClient]) -> None:
    server, proxy, client = hostile
    key = Ed25519PrivateKey.generate()
    other = demo_submission(key, 2, server.platform)  # validly signed and attested, but not what was sent
    proxy.on_submit = lambda sub, params: (other, params)
    with pytest.raises(ReceiptMismatchError, match="payload"):
        client.submit(demo_submission(key, 1, server.platform))


def test_async_submit_rejects_a_receipt_for_another_entry(
    hostile: tuple[ServerProcess, TamperingProxy, LogClient],
) -> None:
    server, proxy, _ = hostile
    key = Ed25519PrivateKey.generate()
    other = demo_submission(key, 2, server.platform)
    proxy.on_submit = lambda sub, params: (other, params)

    async def run() -> None:
        async with httpx.AsyncClient(base_url=proxy.url, timeout=60) as http:
            client = AsyncLogClient(http, server.vkey)
            with pytest.raises(ReceiptMismatchError, match="payload"):
                await client.submit(demo_submission(key, 1, server.platform))

    asyncio.run(run())


def test_record_step_and_the_cli_get_the_receipt_check(
    hostile: tuple[ServerProcess, TamperingProxy, LogClient], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from atlas_log import cli
    from atlas_log.pipeline import record_step
    from atlas_log.testing.simulate import SimulatedProvider

    server, proxy, client = hostile
    key = Ed25519PrivateKey.generate()
    other = demo_submission(key, 2, server.platform)
    proxy.on_submit = lambda sub, params: (other, params)
    statement = intoto_statement([("m", "cd" * 32)], "https://atlas-log.dev/demo/v1", {})
    saved = tmp_path / "receipt.json"
    with pytest.raises(ReceiptMismatchError):
        record_step(client, key, statement, SimulatedProvider(server.platform), receipt_path=saved)
    assert not saved.exists()  # no receipt for somebody else's entry is kept
    (tmp_path / "s.json").write_bytes(statement)
    (tmp_path / "k.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    argv = ["--server", proxy.url, "--vkey", server.vkey, "submit", "--statement", str(tmp_path / "s.json")]
    argv += ["--key", str(tmp_path / "k.pem"), "--simulated-platform", str(server.data_dir / "simulated-tdx")]
    assert cli.main([*argv, "--receipt", str(saved)]) == 1
    assert "not the one built from the submission" in capsys.readouterr().err and not saved.exists()


def test_submit_rejects_a_receipt_by_another_signer(hostile: tuple[ServerProcess, TamperingProxy, LogClient]) -> None:
    _, proxy, client = hostile
    mine, theirs = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    payload = intoto_statement([("m", "ab" * 32)], "https://atlas-log.dev/demo/v1", {})
    proxy.on_submit = lambda sub, params: (signed_submission(theirs, payload), params)
    with pytest.raises(ReceiptMismatchError, match="signer"):
        client.submit(signed_submission(mine, payload))


def test_submit_rejects_a_receipt_that_dropped_the_attestation(
    hostile: tuple[ServerProcess, TamperingProxy, LogClient],
) -> None:
    server, proxy, client = hostile
    proxy.on_submit = lambda sub, params: ({k: v for k, v in sub.items() if k != "tee"}, params)
    with pytest.raises(ReceiptMismatchError, match="attest"):
        client.submit(demo_submission(Ed25519PrivateKey.generate(), 1, server.platform))


def test_submit_rejects_a_new_leaf_with_another_quote(hostile: tuple[ServerProcess, TamperingProxy, LogClient]) -> None:
    server, proxy, client = hostile
    key = Ed25519PrivateKey.generate()
    sub = demo_submission(key, 1, server.platform)
    envelope = sub["dsseEnvelope"]
    rd = payload_report_data(envelope["payloadType"], base64.b64decode(envelope["payload"]), spki_der(key), ZERO_NONCE)
    other_quote = server.platform.quote(rd)  # a second, equally valid quote of the same statement
    assert base64.b64encode(other_quote).decode() != sub["tee"]["quote"]
    proxy.on_submit = lambda s, params: ({**s, "tee": tdx_tee(other_quote)}, params)
    with pytest.raises(ReceiptMismatchError, match="quote"):
        client.submit(sub)


def test_submit_refuses_a_receipt_inconsistent_with_trusted_state(
    hostile: tuple[ServerProcess, TamperingProxy, LogClient],
) -> None:
    server, proxy, client = hostile
    key = Ed25519PrivateKey.generate()
    for n in range(3):
        client.submit(demo_submission(key, n, server.platform))
    trusted = client.trusted.note
    assert client.trusted.size == 3
    log_key = Signer.from_skey((server.data_dir / "log.key").read_text())

    def fork(receipt: dict[str, Any]) -> dict[str, Any]:
        # The log (it holds its key) proves the entry into a one-leaf tree of its own: a valid receipt on its
        # own, but a tree the client's trusted size-3 checkpoint does not extend.
        leaf = base64.b64decode(receipt["leaf"])
        note = sign_checkpoint(Checkpoint(log_key.name, 1, RootHash(leaf_hash(leaf))), log_key)
        proof = {"logIndex": 0, "treeSize": 1, "hashes": []}
        return {**receipt, "logIndex": 0, "inclusionProof": proof, "checkpoint": note.decode()}

    proxy.on_receipt = fork
    with pytest.raises(InconsistentLogError) as e:
        client.submit(demo_submission(key, 9, server.platform))
    assert e.value.new_checkpoint == trusted or e.value.old_checkpoint == trusted
    assert client.trusted.note == trusted


def test_submit_rejects_a_leaf_that_misstates_the_statement(
    hostile: tuple[ServerProcess, TamperingProxy, LogClient],
) -> None:
    server, proxy, client = hostile
    log_key = Signer.from_skey((server.data_dir / "log.key").read_text())

    def misstate(receipt: dict[str, Any]) -> dict[str, Any]:
        # The log (it holds its key) logs the signed payload's hash but claims it is about another artifact.
        entry = parse_leaf(base64.b64decode(receipt["leaf"]))
        body = {**entry.body, "index": {**entry.body["index"], "subjects": [f"sha256:{'ee' * 32}"]}}
        eid, leaf = Entry(body, entry.integrated_time, entry.links).encode()
        note = sign_checkpoint(Checkpoint(log_key.name, 1, RootHash(leaf_hash(leaf))), log_key)
        proof = {"logIndex": 0, "treeSize": 1, "hashes": []}
        return {
            "entryId": eid.hex(),
            "logIndex": 0,
            "leafHash": base64.b64encode(leaf_hash(leaf)).decode(),
            "leaf": base64.b64encode(leaf).decode(),
            "inclusionProof": proof,
            "checkpoint": note.decode(),
        }

    proxy.on_receipt = misstate
    with pytest.raises(ReceiptMismatchError, match="index"):
        client.submit(demo_submission(Ed25519PrivateKey.generate(), 1, server.platform))


def test_submit_enforces_the_witness_policy(server: ServerProcess) -> None:
    witness = CosignatureVerifier.from_vkey(Signer.generate("witness.example/w").verifier.vkey)
    proxy = TamperingProxy(server.url)
    # The log ignores the request for a witnessed receipt and answers with a bare batch checkpoint.
    proxy.on_submit = lambda sub, params: (sub, {k: v for k, v in params.items() if k != "wait"})
    try:
        with httpx.Client(base_url=proxy.url, timeout=60) as http:
            client = LogClient(http, server.vkey, witnesses=[witness], quorum=1)
            with pytest.raises(SignatureError, match="witness"):
                client.submit(demo_submission(Ed25519PrivateKey.generate(), 1, server.platform))
    finally:
        proxy.close()


def test_history_under_a_witness_policy_needs_a_witnessed_checkpoint(server: ServerProcess) -> None:
    """Under a witness policy every checkpoint LogClient fetches must carry the quorum of cosignatures.
    LogClient.history proves each page's checkpoint consistent with the trusted state but never checks its
    cosignatures: a log showing this client a split view serves a history (and moves the client's trusted
    state forward) under a checkpoint no witness has seen."""
    key = Ed25519PrivateKey.generate()
    r = httpx.post(server.url + "/api/v1/entries", json=demo_submission(key, 1, server.platform), timeout=30)
    assert r.status_code == 201, r.text
    subject = json.loads(base64.b64decode(r.json()["leaf"]))["body"]["index"]["subjects"][0]
    witness = CosignatureVerifier("witness.example/w1", Ed25519PrivateKey.generate().public_key().public_bytes_raw())
    with httpx.Client(base_url=server.url, timeout=30) as http:
        client = LogClient(http, server.vkey, witnesses=[witness], quorum=1)
        with pytest.raises(VerificationError):
            client.history(subject)
        assert client.trusted.checkpoint is None, "the trusted state advanced to an unwitnessed checkpoint"


def test_async_prove_consistent_enforces_the_witness_policy() -> None:
    log = FakeLog(SIGNER, list(LEAVES))
    witness = CosignatureVerifier.from_vkey(Signer.generate("witness.example/w").verifier.vkey)

    async def run() -> None:
        async with httpx.AsyncClient(base_url="http://log", transport=httpx.MockTransport(log.handler)) as http:
            client = AsyncLogClient(http, SIGNER.verifier, witnesses=[witness], quorum=1)
            with pytest.raises(SignatureError, match="witness"):
                await client.prove_consistent(log.note())
            assert client.trusted.checkpoint is None

    asyncio.run(run())


# --- verify_receipt_current: an advance is proved, never assumed ------------------------------------------------


def _receipt_in(log: FakeLog, index: int) -> Receipt:
    """A receipt for a real entry leaf placed at ``index`` of ``log`` (at its current size)."""
    body = {
        "apiVersion": "atlas-log/v1",
        "paeHash": {"sha256": hashlib.sha256(b"statement %d" % index).hexdigest()},
        "signatures": [{"verifier": {"spkiSha256": "ab" * 32}}],
    }
    eid, leaf = Entry(body, 1).encode()
    log.leaves = [*log.leaves[:index], leaf_hash(leaf), *log.leaves[index + 1 :]]
    proof = reference.path(index, log.leaves[: log.size])
    return Receipt(eid, index, leaf_hash(leaf), leaf, log.size, tuple(proof), log.note())


def test_verify_receipt_current_refuses_a_rollback_with_both_checkpoints() -> None:
    log, http = make(list(LEAVES), SIGNER)
    log.size = 20
    receipt = _receipt_in(log, 5)
    log.size = 12  # the log's database was rolled back below the receipt's tree
    client = LogClient(http, SIGNER.verifier)
    with pytest.raises(InconsistentLogError, match="rollback") as e:
        client.verify_receipt_current(receipt)
    assert e.value.old_checkpoint == receipt.checkpoint and e.value.new_checkpoint == log.note()


def test_verify_receipt_current_refuses_another_tree_of_the_same_size() -> None:
    log, http = make(list(LEAVES), SIGNER)
    log.size = 20
    receipt = _receipt_in(log, 5)
    log.leaves = [*log.leaves[:9], reference.leaf(b"rewritten"), *log.leaves[10:]]
    client = LogClient(http, SIGNER.verifier)
    with pytest.raises(InconsistentLogError, match="two different roots") as e:
        client.verify_receipt_current(receipt)
    assert e.value.old_checkpoint == receipt.checkpoint and e.value.new_checkpoint == log.note()
    log.leaves = [*LEAVES[:5], receipt.leaf_hash, *LEAVES[6:]]
    assert LogClient(http, SIGNER.verifier).verify_receipt_current(receipt).size == 20


def test_async_verify_receipt_current_refuses_a_rollback() -> None:
    log = FakeLog(SIGNER, list(LEAVES))
    log.size = 20
    receipt = _receipt_in(log, 5)
    log.size = 12

    async def run() -> None:
        async with httpx.AsyncClient(base_url="http://log", transport=httpx.MockTransport(log.handler)) as http:
            with pytest.raises(InconsistentLogError, match="rollback"):
                await AsyncLogClient(http, SIGNER.verifier).verify_receipt_current(receipt)

    asyncio.run(run())


# --- Every read of the API, typed and verified, sync and async alike ------------------------------------------


def test_every_read_is_typed_and_verified(server: ServerProcess) -> None:
    from atlas_log.answers import SearchFilter

    key = Ed25519PrivateKey.generate()
    with LogClient(server.url, server.vkey) as client:
        receipts = [client.submit(demo_submission(key, n, server.platform)) for n in range(3)]
        info = client.log_info()
        assert info.verifier_key == server.vkey and info.tree_size == 3 and info.frozen_checkpoint is None
        cp, _ = client.checkpoint()
        assert cp.size == 3 and client.trusted.size == 3
        logged = client.entry(1)
        assert logged.leaf_hash == receipts[1].leaf_hash and logged.checkpoint == cp
        assert isinstance(logged.submission, dict) and "dsseEnvelope" in logged.submission
        assert client.entry_by_leaf_hash(receipts[2].leaf_hash).log_index == 2
        assert client.inclusion_proof(0, 3).leaf_hash == receipts[0].leaf_hash
        bundle = client.entry_bundle(0, 3)
        assert bundle.leaf_hashes == tuple(r.leaf_hash for r in receipts)
        assert client.tile(0, 0, 3).hashes == bundle.leaf_hashes
        submissions = client.submissions(0, 3).items
        for leaf, served in zip(bundle.leaves, submissions, strict=True):  # each is the one its leaf was built from
            assert isinstance(served, dict)
            verify_leaf_for(leaf, SubmittedEntry.from_submission(served), new_leaf=True)
        evidence = client.evidence(1)
        no_map = client.map_status()  # this log keeps no map
        assert no_map.commitment is None and no_map.checkpoint.size == 3
        assert evidence.verified_at == logged.entry.integrated_time and evidence.verdict == logged.entry.body["tee"]
        assert client.collateral(evidence.collateral.digest) == evidence.collateral
        subject = logged.entry.body["index"]["subjects"][0]
        pages = list(client.history_pages(subject, page_size=1))
        assert [e.log_index for e in pages[-1].entries] == [1] and pages[-1].gap_free_from == 1
        assert client.lineage(subject).artifact == subject
        signer = "sha256:" + logged.entry.body["signatures"][0]["verifier"]["spkiSha256"]
        found = client.search(SearchFilter(signer=signer), limit=2)
        assert [e.log_index for e in found.entries] == [2, 1] and found.next_before == 1
        assert not found.complete and "unproven index lookup" in found.incomplete
        assert [e.log_index for e in client.search(SearchFilter(signer=signer), before=1).entries] == [0]

    async def twin() -> tuple[int, int, bytes]:
        async with AsyncLogClient(server.url, server.vkey) as client:
            logged = await client.entry(1)
            history = await client.history(subject)
            return logged.log_index, history.entries[0].log_index, (await client.evidence(1)).quote

    assert asyncio.run(twin()) == (1, 1, evidence.quote)


def test_reads_refuse_answers_that_do_not_prove_what_they_claim(server: ServerProcess) -> None:
    from atlas_log.answers import SearchFilter

    key = Ed25519PrivateKey.generate()
    for n in range(2):
        r = httpx.post(server.url + "/api/v1/entries", json=demo_submission(key, n, server.platform), timeout=30)
        assert r.status_code == 201, r.text
    proxy = TamperingProxy(server.url)
    quotes: dict[str, Any] = {}

    def lie(url: httpx.URL, answer: Any) -> Any:
        if url.path.endswith("/evidence"):  # the other entry's quote, equally valid on its own
            quotes.setdefault(url.path, answer["quote"])
            return {**answer, "quote": quotes.get("/api/v1/entries/0/evidence", answer["quote"])}
        if url.path == "/api/v1/search":  # entries of another predicate type passed off as matches
            return httpx.get(server.url + "/api/v1/search", params={"from": 0}, timeout=30).json()
        if url.path.startswith("/api/v1/collateral/"):  # another collateral set under the digest asked for
            return {**answer, "collateral": {**answer["collateral"], "pck_crl": base64.b64encode(b"crl").decode()}}
        return answer

    proxy.on_get = lie
    try:
        with LogClient(proxy.url, server.vkey) as client:
            digest = client.entry(0).entry.body["tee"]["collateral"]["set"]
            client.evidence(0)
            with pytest.raises(VerificationError, match="not the one entry 1 records"):
                client.evidence(1)
            with pytest.raises(VerificationError, match="predicate type"):
                client.search(SearchFilter(predicate_type="https://example.com/other/v1", since=0))
            with pytest.raises(VerificationError, match=f"for digest {digest}"):
                client.collateral(digest)
    finally:
        proxy.close()
