"""PostgreSQL integration: migrations, the append-only rules, the sequencer and concurrent sequencers."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import os
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from atlas_log.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from atlas_log.entry import IndexRow, encode_leaf
from atlas_log.merkle import EMPTY_ROOT, LeafHash, RootHash, verify_consistency, verify_inclusion
from atlas_log.note import NoteSignature, Signer, Verifier
from atlas_log.tiles import TileLevels
from atlas_log_server.db import migrate
from atlas_log_server.db.engine import UNAVAILABLE, asyncpg_dsn, create_pool, sqlalchemy_url
from atlas_log_server.db.models import metadata
from atlas_log_server.db.repository import Repository
from atlas_log_server.errors import InvalidRequest
from atlas_log_server.log.last_signed import LastSignedFile, TreeHead
from atlas_log_server.log.proofs import ProofService
from atlas_log_server.log.sequencer import PendingEntry, Sequencer
from atlas_log_server.log.signer import CheckpointSigner, SigningRefused
from tests import reference
from tests.conftest import _admin, with_database

ORIGIN = "test.example/log"


def pending(i: int, salt: bytes = b"") -> PendingEntry:
    body = json.dumps({"n": i, "salt": salt.hex()}).encode()
    return PendingEntry(hashlib.sha256(body).digest(), body, b"{}", 1)


def expected_leaf_hash(p: PendingEntry) -> bytes:
    """The leaf the sequencer builds for an entry that names no artifacts."""
    return hashlib.sha256(b"\x00" + encode_leaf(p.body, p.integrated_time, {})).digest()


async def _log(db_url: str, signer: Signer, pool_size: int = 4) -> tuple[Repository, Sequencer]:
    pool = await create_pool(db_url, pool_size)
    repo = Repository(pool, ORIGIN)
    await repo.init_log(sign_checkpoint(Checkpoint(ORIGIN, 0, EMPTY_ROOT), signer))
    seq = Sequencer(repo, CheckpointSigner(signer), max_batch=64, max_age_s=0.002, max_pending=100_000)
    return repo, seq


def test_migrations_round_trip_and_match_models(db_url: str) -> None:
    migrate.downgrade(db_url, "base")
    migrate.upgrade(db_url, "head")

    async def diff() -> list[object]:
        engine = create_async_engine(sqlalchemy_url(db_url))
        async with engine.connect() as conn:
            result = await conn.run_sync(lambda c: compare_metadata(MigrationContext.configure(c), metadata))
        await engine.dispose()
        return list(result)

    assert asyncio.run(diff()) == []


async def test_append_only_rules_hold_in_the_database(db_url: str) -> None:
    signer = Signer.generate(ORIGIN)
    repo, seq = await _log(db_url, signer)
    await seq.append([pending(i) for i in range(300)])
    conn = await asyncpg.connect(db_url)
    try:
        for stmt in (
            "UPDATE entries SET leaf = 'x' WHERE idx = 0",
            "DELETE FROM entries WHERE idx = 0",
            "TRUNCATE entries",
            "UPDATE checkpoints SET note = 'x'",
            "DELETE FROM checkpoints",
            "DELETE FROM tiles WHERE level = 0 AND idx = 1",
            "UPDATE tiles SET hashes = hashes || hashes WHERE level = 0 AND idx = 0",  # full tile
            "UPDATE tiles SET hashes = substring(hashes FROM 1 FOR 32) WHERE level = 0 AND idx = 1",  # shrink
            # same length plus more, but the existing prefix changed
            "UPDATE tiles SET hashes = '\\x00'::bytea || substring(hashes FROM 2) || hashes "
            "WHERE level = 0 AND idx = 1",
            "UPDATE log_state SET size = 1",
            "DELETE FROM log_state",
            # a full tile's stored inner nodes are as immutable as its hashes; a partial tile has none
            "UPDATE tiles SET nodes = NULL WHERE level = 0 AND idx = 0",
            "UPDATE tiles SET nodes = decode(repeat('00', 8160), 'hex') WHERE level = 0 AND idx = 1",
        ):
            with pytest.raises(asyncpg.PostgresError):
                await conn.execute(stmt)
        # A genuine extension of a partial tile is allowed (that is how the sequencer writes).
        status = await conn.execute("UPDATE tiles SET hashes = hashes || $1 WHERE level = 0 AND idx = 1", bytes(32))
        assert status == "UPDATE 1"
    finally:
        await conn.close()
        await repo.pool.close()


async def test_sequencer_builds_the_reference_tree_and_dedupes(db_url: str) -> None:
    signer = Signer.generate(ORIGIN)
    repo, seq = await _log(db_url, signer)
    items = [pending(i) for i in range(700)]
    results = []
    cuts = [0, 1, 5, 255, 256, 300, 513, 700]
    for a, b in itertools.pairwise(cuts):
        results += await seq.append(items[a:b])
    assert [r.index for r in results] == list(range(700))
    again = await seq.append([items[3], items[3], pending(700)])
    assert [(r.index, r.created) for r in again] == [(3, False), (3, False), (700, True)]
    leaves = [expected_leaf_hash(i) for i in items] + [expected_leaf_hash(pending(700))]
    state = await repo.state()
    assert state.size == 701 and state.root_hash == reference.mth(leaves)
    cp = open_checkpoint(state.checkpoint or b"", signer.verifier)
    assert cp.size == 701
    # Each full tile was stored with its inner nodes as it filled (by an insert or by the extension that
    # completed it); the partial one has none.
    rows = await repo.pool.fetch("SELECT level, idx, hashes, nodes FROM tiles ORDER BY level, idx")
    assert [(r["level"], r["idx"], r["nodes"] is not None) for r in rows] == [
        (0, 0, True),
        (0, 1, True),
        (0, 2, False),
        (1, 0, False),
    ]
    for r in rows:
        if r["nodes"] is not None:
            assert r["nodes"] == TileLevels(r["hashes"]).inner
    # Proofs from the stored tiles match the reference at every size a checkpoint was signed for, and so do
    # they from full tiles filled before inner nodes were stored (hashed when read).
    for capacity in (0, 3, 100):
        await _check_proofs(ProofService(repo, capacity), leaves)
    async with repo.pool.acquire() as conn:
        await conn.execute("SET session_replication_role = replica")  # past the immutability trigger
        await conn.execute("UPDATE tiles SET nodes = NULL")
        await conn.execute("RESET session_replication_role")
    await _check_proofs(ProofService(repo, 3), leaves)
    # Receipts from the batch itself verify.
    last = again[2].batch
    verify_inclusion(LeafHash(leaves[700]), 700, 701, last.inclusion_proof(700), RootHash(cp.root_hash))
    await repo.pool.close()


async def test_requested_proofs_are_checked_against_the_log(db_url: str) -> None:
    """A client's proof request is refused (InvalidRequest) unless the log has the trees it names."""
    signer = Signer.generate(ORIGIN)
    repo, seq = await _log(db_url, signer)
    items = [pending(i) for i in range(5)]
    await seq.append(items)
    proofs = ProofService(repo, 10)
    leaf, _ = await proofs.checked_inclusion(4, 5)
    assert leaf == expected_leaf_hash(items[4])
    assert await proofs.checked_consistency(2, 5) == await proofs.consistency(2, 5)
    refusals = [
        (proofs.checked_inclusion(0, 6), "tree-size-too-large", "treeSize (6) exceeds the log's size 5"),
        (proofs.checked_inclusion(5, 5), "index-out-of-range", "index 5 must be smaller than treeSize 5"),
        (proofs.checked_consistency(3, 2), "invalid-range", "from (3) must not exceed to (2)"),
        (proofs.checked_consistency(1, 9), "tree-size-too-large", "to (9) exceeds the log's size 5"),
    ]
    for request, slug, detail in refusals:
        with pytest.raises(InvalidRequest) as caught:
            await request
        assert (caught.value.slug, caught.value.detail) == (slug, detail)
    await repo.pool.close()


async def _check_proofs(proofs: ProofService, leaves: list[bytes]) -> None:
    for size in (1, 5, 255, 256, 300, 513, 700, 701):
        assert await proofs.root(size) == reference.mth(leaves[:size])
        for i in {0, size // 2, size - 1}:
            assert await proofs.inclusion(i, size) == (leaves[i], reference.path(i, leaves[:size]))
        assert await proofs.consistency(1, size) == reference.proof(1, leaves[:size])


async def test_concurrent_sequencers_make_one_consistent_tree(db_url: str) -> None:
    signer = Signer.generate(ORIGIN)
    logs = [await _log(db_url, signer) for _ in range(3)]
    for _, seq in logs:
        seq.task = asyncio.create_task(seq.run())  # type: ignore[attr-defined]
    salt = os.urandom(4)
    items = [pending(i, salt) for i in range(1500)]
    results = await asyncio.gather(*(logs[i % 3][1].submit(item) for i, item in enumerate(items)))
    assert sorted(r.index for r in results) == list(range(1500))
    repo = logs[0][0]
    state = await repo.state()
    by_index = {r.index: expected_leaf_hash(items[n]) for n, r in enumerate(results)}
    assert state.root_hash == reference.mth([by_index[i] for i in range(1500)])
    # Every batch's checkpoint is consistent with the final one.
    final = open_checkpoint(state.checkpoint or b"", signer.verifier)
    proofs = ProofService(repo, 100)
    for r in results[::97]:
        cp = r.batch.checkpoint
        verify_inclusion(LeafHash(by_index[r.index]), r.index, cp.size, r.batch.inclusion_proof(r.index), cp.root_hash)
        verify_consistency(
            cp.size, final.size, await proofs.consistency(cp.size, final.size), cp.root_hash, final.root_hash
        )
    for _, seq in logs:
        seq.task.cancel()  # type: ignore[attr-defined]
    for repo_, _ in logs:
        await repo_.pool.close()


async def test_a_batch_that_fails_before_its_commit_takes_its_checkpoint_back(db_url: str, tmp_path: Path) -> None:
    """The sequencer signs and records a checkpoint just before its COMMIT. A batch the database refuses then
    never commits (nobody saw its checkpoint), so it is taken back and the next batch signs over the same tree:
    the signer's record refuses to sign over the base of a pending checkpoint it was not told about."""
    signer = Signer.generate(ORIGIN)
    pool = await create_pool(db_url, 2)
    repo = Repository(pool, ORIGIN)
    await repo.init_log(sign_checkpoint(Checkpoint(ORIGIN, 0, EMPTY_ROOT), signer))
    record = LastSignedFile.beside(tmp_path / "log.key", signer.verifier.vkey)
    checkpoints = CheckpointSigner(signer, record)
    assert checkpoints.adopt(Checkpoint(ORIGIN, 0, EMPTY_ROOT)) is None
    seq = Sequencer(repo, checkpoints, max_batch=8, max_age_s=0.002, max_pending=100)
    await seq.append([pending(0)])
    await pool.execute(
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'no'; END $$;"
        "CREATE TRIGGER refuse BEFORE INSERT ON checkpoints FOR EACH ROW EXECUTE FUNCTION refuse()"
    )
    with pytest.raises(asyncpg.PostgresError, match="no"):
        await seq.append([pending(1), pending(2)])
    await pool.execute("DROP TRIGGER refuse ON checkpoints")
    found = record.read()
    assert found is not None and not found.pending and found.signed.size == 1
    assert [r.index for r in await seq.append([pending(3)])] == [1]  # another tree of size 2 than the one taken back
    state = await repo.state()
    assert state.root_hash == reference.mth([expected_leaf_hash(pending(0)), expected_leaf_hash(pending(3))])
    await pool.close()


class _SlowKey:
    """A key that takes its time (an external signer): the batch is cancelled while it signs."""

    def __init__(self, key: Signer) -> None:
        self.key = key
        self.signing = threading.Event()

    @property
    def name(self) -> str:
        return self.key.name

    @property
    def verifier(self) -> Verifier:
        return self.key.verifier

    def sign(self, text: str) -> NoteSignature:
        self.signing.set()
        time.sleep(0.3)
        return self.key.sign(text)


async def test_a_batch_cancelled_while_it_signs_takes_its_checkpoint_back(db_url: str, tmp_path: Path) -> None:
    """A shutdown cancels the batch while the signer (in a thread) signs and records its checkpoint: the batch
    never commits, so the checkpoint is taken back once the thread is done, and the next start signs over it."""
    key = Signer.generate(ORIGIN)
    pool = await create_pool(db_url, 2)
    repo = Repository(pool, ORIGIN)
    await repo.init_log(sign_checkpoint(Checkpoint(ORIGIN, 0, EMPTY_ROOT), key))
    record = LastSignedFile.beside(tmp_path / "log.key", key.verifier.vkey)
    slow = _SlowKey(key)
    checkpoints = CheckpointSigner(slow, record)
    assert checkpoints.adopt(Checkpoint(ORIGIN, 0, EMPTY_ROOT)) is None
    seq = Sequencer(repo, checkpoints, max_batch=8, max_age_s=0.002, max_pending=100)
    batch = asyncio.create_task(seq.append([pending(0)]))
    assert await asyncio.to_thread(slow.signing.wait, 10)
    batch.cancel()
    with pytest.raises(asyncio.CancelledError):
        await batch
    found = record.read()
    assert found is not None and not found.pending and found.signed.size == 0
    assert (await repo.state()).size == 0
    assert [r.index for r in await seq.append([pending(1)])] == [0]
    await pool.close()


_LOSE_COMMIT = """
CREATE FUNCTION lose_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); PERFORM pg_sleep(5); RETURN NULL; END $$;
CREATE CONSTRAINT TRIGGER lose_commit AFTER INSERT ON checkpoints DEFERRABLE INITIALLY DEFERRED
FOR EACH ROW EXECUTE FUNCTION lose_commit();
"""


async def _two_processes(db_url: str, tmp_path: Path) -> tuple[Repository, LastSignedFile, Sequencer, Sequencer]:
    """A new log and two sequencers sharing its key folder, as two server processes do."""
    key = Signer.generate(ORIGIN)
    repo = Repository(await create_pool(db_url, 2), ORIGIN)
    await repo.init_log(sign_checkpoint(Checkpoint(ORIGIN, 0, EMPTY_ROOT), key))
    record = LastSignedFile.beside(tmp_path / "log.key", key.verifier.vkey)
    first, second = CheckpointSigner(key, record), CheckpointSigner(key, record)
    assert first.adopt(Checkpoint(ORIGIN, 0, EMPTY_ROOT)) is None
    seq = [Sequencer(repo, s, max_batch=8, max_age_s=0.002, max_pending=100) for s in (first, second)]
    return repo, record, seq[0], seq[1]


async def test_a_batch_whose_commit_was_lost_is_committed_again_by_its_sequencer(db_url: str, tmp_path: Path) -> None:
    """The database goes away while a batch COMMITs: the sequencer cannot know whether it committed, so its
    signed checkpoint stays pending and every process sharing the key refuses to sign over the batch's base.
    The sequencer that signed it still holds the batch: once the database is back it commits that same tree
    (nothing new is signed), by itself and without waiting for another submission, and the log goes on."""
    repo, record, seq, other = await _two_processes(db_url, tmp_path)
    pool = repo.pool
    await seq.append([pending(0)])
    await pool.execute(_LOSE_COMMIT)  # the connection dies inside COMMIT, as when the server stops
    with pytest.raises(UNAVAILABLE):
        await seq.append([pending(1), pending(2)])
    await pool.execute("DROP TRIGGER lose_commit ON checkpoints")
    found = record.read()
    assert found is not None and found.pending and found.signed.size == 3
    assert (await repo.state()).size == 1
    with pytest.raises(SigningRefused, match="not told whether"):  # another process must not sign over it
        await other.append([pending(9)])

    # Another process's batch waits for it; no submission reaches the sequencer that holds the lost batch.
    running = [asyncio.create_task(other.run()), asyncio.create_task(seq.run())]
    try:
        meanwhile = await asyncio.wait_for(other.submit(pending(9)), 10)
        assert (meanwhile.index, meanwhile.created) == (3, True)
        # The tree of size 3 is the one the record holds as signed, not another one.
        assert await pool.fetchval("SELECT root_hash FROM checkpoints WHERE size = 3") == found.signed.root
        assert reference.mth([expected_leaf_hash(pending(i)) for i in range(3)]) == found.signed.root
        again = await other.submit(pending(1))  # its submitter retries and gets its entry
        assert (again.index, again.created) == (1, False)
    finally:
        for task in running:
            task.cancel()
    found = record.read()
    assert found is not None and not found.pending
    await pool.close()


async def _lose_a_batch(repo: Repository, seq: Sequencer) -> None:
    """``seq`` loses the COMMIT of entries 1 and 2 over the log's tree."""
    await repo.pool.execute(_LOSE_COMMIT)
    with pytest.raises(UNAVAILABLE):
        await seq.append([pending(1), pending(2)])
    await repo.pool.execute("DROP TRIGGER lose_commit ON checkpoints")


def _root(*entries: int) -> bytes:
    return reference.mth([expected_leaf_hash(pending(i)) for i in entries])


@pytest.mark.parametrize("first", ["holder", "other"])
async def test_a_released_lost_batch_is_dropped_whoever_writes_first(db_url: str, tmp_path: Path, first: str) -> None:
    """The operator released the lost batch's checkpoint (it never committed): the sequencer still holding the
    batch drops it, never commits it, whether it or another process writes first, and the log goes on."""
    repo, record, seq, other = await _two_processes(db_url, tmp_path)
    await _lose_a_batch(repo, seq)
    record.release_pending(TreeHead(0, EMPTY_ROOT))
    order = [(seq, 6), (other, 7)] if first == "holder" else [(other, 7), (seq, 6)]
    for i, (sequencer, entry) in enumerate(order):
        assert [r.index for r in await sequencer.append([pending(entry)])] == [i]
    assert (await repo.state()).root_hash == _root(*(entry for _, entry in order))
    await repo.pool.close()


async def test_a_lost_batch_released_and_then_failed_over_is_never_committed(
    db_url: str, pg_url: str, tmp_path: Path
) -> None:
    """Released, the log goes on (a tree of size 1 is served), then the database fails over to a replica still
    at the lost batch's base. Committing the batch there would serve a second tree that does not extend the
    one served: the record no longer holds it, so it is dropped, and writes are refused as for any rollback."""
    repo, record, seq, other = await _two_processes(db_url, tmp_path)
    await _lose_a_batch(repo, seq)
    name = urlsplit(db_url).path.lstrip("/")
    lagging = f"{name}_lagging"
    await repo.pool.close()  # a database copied as a template has no other connections
    await _admin(pg_url, f'CREATE DATABASE "{lagging}" TEMPLATE "{name}"')
    replica = Repository(await create_pool(with_database(pg_url, lagging), 2), ORIGIN)
    try:
        other.repo = Repository(await create_pool(db_url, 2), ORIGIN)
        record.release_pending(TreeHead(0, EMPTY_ROOT))
        assert [r.index for r in await other.append([pending(5)])] == [0]
        await other.repo.pool.close()
        seq.repo = other.repo = replica  # failed over
        for sequencer in (seq, other):
            with pytest.raises(SigningRefused, match="rolled back"):
                await sequencer.append([pending(8)])
        assert (await replica.state()).size == 0
    finally:
        await replica.pool.close()
        await _admin(pg_url, f'DROP DATABASE IF EXISTS "{lagging}" WITH (FORCE)')


async def test_a_lost_batch_is_kept_while_the_database_is_behind_its_base(
    db_url: str, pg_url: str, tmp_path: Path
) -> None:
    """Failed over to a replica behind the lost batch's base, the log refuses writes (a rollback); rolled
    forward to the base again, the sequencer still holds the batch and commits it: no operator needed."""
    repo, _, seq, _ = await _two_processes(db_url, tmp_path)
    name = urlsplit(db_url).path.lstrip("/")
    older = f"{name}_older"
    await repo.pool.close()
    await _admin(pg_url, f'CREATE DATABASE "{older}" TEMPLATE "{name}"')  # the log at size 0
    repo = seq.repo = Repository(await create_pool(db_url, 2), ORIGIN)
    behind = Repository(await create_pool(with_database(pg_url, older), 2), ORIGIN)
    try:
        await seq.append([pending(0)])
        await _lose_a_batch(repo, seq)
        seq.repo = behind
        with pytest.raises(SigningRefused, match="rolled back"):
            await seq.append([pending(3)])
        seq.repo = repo  # rolled forward to the batch's base
        assert [r.index for r in await seq.append([pending(3)])] == [3]
        assert (await repo.state()).root_hash == _root(0, 1, 2, 3)
    finally:
        await repo.pool.close()
        await behind.pool.close()
        await _admin(pg_url, f'DROP DATABASE IF EXISTS "{older}" WITH (FORCE)')


@pytest.mark.parametrize("trouble", ["read-only", "lock-timeout"])
async def test_a_lost_batch_is_kept_through_passing_trouble(db_url: str, tmp_path: Path, trouble: str) -> None:
    """While the database fails over it may answer read-only (a standby not promoted yet), or the tree's lock
    may time out: the batch is kept, and committed again once the database takes writes."""
    repo, _, seq, _ = await _two_processes(db_url, tmp_path)
    await _lose_a_batch(repo, seq)
    setting = {"read-only": {"default_transaction_read_only": "on"}, "lock-timeout": {"lock_timeout": "200ms"}}
    troubled = await asyncpg.create_pool(asyncpg_dsn(db_url), min_size=1, max_size=2, server_settings=setting[trouble])
    blocker = await asyncpg.connect(asyncpg_dsn(db_url))
    try:
        async with blocker.transaction():
            if trouble == "lock-timeout":
                await blocker.execute("SELECT 1 FROM log_state FOR UPDATE")
            seq.repo = Repository(troubled, ORIGIN)
            with pytest.raises(asyncpg.PostgresError):
                await seq.append([pending(3)])
        seq.repo = repo
        assert [r.index for r in await seq.append([pending(3)])] == [2]
        assert (await repo.state()).root_hash == _root(1, 2, 3)
    finally:
        await blocker.close()
        await troubled.close()
        await repo.pool.close()


def test_signer_refuses_inconsistent_checkpoints() -> None:
    signer = CheckpointSigner(Signer.generate(ORIGIN))
    leaves = [reference.leaf(bytes([i])) for i in range(8)]
    cp = lambda n: Checkpoint(ORIGIN, n, RootHash(reference.mth(leaves[:n])))  # noqa: E731
    signer.sign(cp(3), cp(8), reference.proof(3, leaves))
    with pytest.raises(SigningRefused):
        signer.sign(cp(3), cp(8), reference.proof(2, leaves))
    with pytest.raises(SigningRefused):
        signer.sign(cp(3), Checkpoint(ORIGIN, 8, RootHash(bytes(32))), reference.proof(3, leaves))
    with pytest.raises(SigningRefused):
        signer.sign(cp(5), cp(4), [])
    signer.committed(cp(8))
    with pytest.raises(SigningRefused, match="behind"):
        signer.sign(cp(5), cp(6), reference.proof(5, leaves[:6]))
    with pytest.raises(SigningRefused):
        signer.sign(Checkpoint("other", 8, cp(8).root_hash), cp(8), [])


def _step(n: int, subject: str, materials: list[str]) -> PendingEntry:
    """An entry stating ``materials -> subject`` in the lineage index."""
    body = json.dumps({"step": n, "subject": subject, "materials": materials}).encode()
    material_rows = [IndexRow(m, "material", None, f"$.materials[{i}]", None) for i, m in enumerate(materials)]
    rows = (IndexRow(subject, "subject", None, "$.subject[0]", None), *material_rows)
    return PendingEntry(hashlib.sha256(body).digest(), body, b"{}", 1, rows=rows)


async def test_lineage_visits_each_artifact_once_and_stops_at_its_limit(db_url: str) -> None:
    """A DAG 3 wide and 30 deep has 3^30 paths but 264 edges: the walk costs the edges, not the paths. Asked for
    fewer edges than exist, it returns the nearest ones and stops; a cycle ends the walk instead of looping."""
    import time

    signer = Signer.generate(ORIGIN)
    repo, seq = await _log(db_url, signer)
    node = lambda layer, i: f"sha256:{layer:032x}{i:032x}"  # noqa: E731
    width, layers = 3, 30
    steps = []
    for layer in range(1, layers + 1):
        below = [node(0, 0)] if layer == 1 else [node(layer - 1, j) for j in range(width)]
        steps += [_step(len(steps), node(layer, i), below) for i in range(width)]
    a, b = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    steps += [_step(len(steps), b, [a]), _step(len(steps) + 1, a, [b])]  # a -> b -> a
    await seq.append(steps)
    size = len(steps)
    down, up = (("material",), ("subject",)), (("subject",), ("material",))
    started = time.monotonic()
    edges = await repo.lineage(node(0, 0), *down, layers, size, 100_000)
    assert time.monotonic() - started < 5
    assert len(edges) == len(set(edges)) == width + width * width * (layers - 1)
    hop = {node(0, 0): 0} | {node(layer, i): layer for layer in range(1, layers + 1) for i in range(width)}
    assert [hop[src] for src, _, _ in edges] == sorted(hop[src] for src, _, _ in edges)  # nearest first
    assert await repo.lineage(node(0, 0), *down, layers, size, 10) == edges[:10]
    assert await repo.lineage(node(0, 0), *down, 2, size, 100_000) == edges[: width + width * width]
    # Upwards from the top: every edge into it, once each (the other two tops are not upstream of it).
    upwards = await repo.lineage(node(layers, 0), *up, layers, size, 100_000)
    assert len(upwards) == len(set(upwards)) == 2 * width + width * width * (layers - 2)
    assert sorted(await repo.lineage(a, *down, 20, size, 100)) == [(a, b, size - 2), (b, a, size - 1)]
    assert await repo.lineage(a, *down, 20, size - 1, 100) == [(a, b, size - 2)]  # only entries below the size
    await repo.pool.close()
