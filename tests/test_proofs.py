"""The proof service's tile cache: what it keeps, how misses are read, and the warm-up at start."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import asyncpg
import pytest

from atlas_log.note import Signer
from atlas_log_server.db.engine import create_pool
from atlas_log_server.db.replicas import pinned
from atlas_log_server.db.repository import Repository, StorageError
from atlas_log_server.log.proofs import ProofService, tree_tiles
from tests import reference
from tests.conftest import with_database
from tests.test_storage import ORIGIN, _log, expected_leaf_hash, pending

Fetch = Callable[[list[tuple[int, int]]], Awaitable[dict[tuple[int, int], tuple[bytes, bytes | None]]]]


def _count_reads(repo: Repository, before: Callable[[], Awaitable[None]] | None = None) -> list[int]:
    """Record the number of tiles each query of the repository reads (after awaiting ``before``)."""
    loaded: list[int] = []
    fetch: Fetch = repo.tile_levels

    async def counting(keys: list[tuple[int, int]]) -> dict[tuple[int, int], tuple[bytes, bytes | None]]:
        loaded.append(len(keys))
        if before is not None:
            await before()
        return await fetch(keys)

    repo.tile_levels = counting  # type: ignore[method-assign]
    return loaded


async def test_the_tile_cache_keeps_what_every_proof_uses(db_url: str) -> None:
    """Least recently used tiles go first: the upper tile every proof touches stays cached while level-0 tiles
    come and go, so each proof past the first loads just its own level-0 tile."""
    repo, seq = await _log(db_url, Signer.generate(ORIGIN))
    await seq.append([pending(i) for i in range(768)])  # three full level-0 tiles under one level-1 tile
    proofs = ProofService(repo, 2)
    loaded = _count_reads(repo)
    for index in (0, 256, 512, 0, 256, 512, 0):
        await proofs.inclusion(index, 768)
    assert loaded == [2, 1, 1, 1, 1, 1, 1]
    await repo.pool.close()


async def test_proofs_missing_tiles_together_read_them_in_one_query(db_url: str) -> None:
    """Concurrent proofs that miss are served by one read, and a tile two of them miss is read once."""
    repo, seq = await _log(db_url, Signer.generate(ORIGIN))
    items = [pending(i) for i in range(768)]
    await seq.append(items)
    leaves = [expected_leaf_hash(p) for p in items]
    proofs = ProofService(repo, 100)
    loaded = _count_reads(repo)
    answers = await asyncio.gather(*(proofs.inclusion(i, 768) for i in (0, 256, 512, 5, 700)))
    assert loaded == [4]  # three level-0 tiles and the level-1 tile
    for i, answer in zip((0, 256, 512, 5, 700), answers, strict=True):
        assert answer == (leaves[i], reference.path(i, leaves))
    # Without a cache, concurrent proofs still share their read.
    uncached = ProofService(repo, 0)
    await asyncio.gather(*(uncached.consistency(n, 768) for n in (3, 300, 600)))
    assert loaded == [4, 4]
    await repo.pool.close()


async def test_a_failed_read_fails_each_proof_waiting_on_it_and_is_not_kept(db_url: str) -> None:
    repo, seq = await _log(db_url, Signer.generate(ORIGIN))
    await seq.append([pending(i) for i in range(300)])
    proofs = ProofService(repo, 100)
    failures = iter([StorageError("the database went away")])

    async def fail_once() -> None:
        if (failure := next(failures, None)) is not None:
            raise failure

    loaded = _count_reads(repo, fail_once)
    outcomes = await asyncio.gather(proofs.inclusion(0, 300), proofs.inclusion(299, 300), return_exceptions=True)
    assert [str(o) for o in outcomes] == ["the database went away"] * 2
    assert loaded == [3]
    assert (await proofs.inclusion(0, 300))[0] == (await proofs.inclusion(0, 300))[0]
    assert loaded == [3, 2]  # read again (the two tiles this proof needs), once, then from the cache
    await repo.pool.close()


async def test_a_proof_given_up_on_does_not_cancel_the_read_others_wait_on(db_url: str) -> None:
    repo, seq = await _log(db_url, Signer.generate(ORIGIN))
    items = [pending(i) for i in range(10)]
    await seq.append(items)
    proofs = ProofService(repo, 100)
    slow = asyncio.Event()

    async def wait_for_release() -> None:
        await slow.wait()

    loaded = _count_reads(repo, wait_for_release)
    abandoned = asyncio.create_task(proofs.inclusion(3, 10))
    kept = asyncio.create_task(proofs.inclusion(3, 10))
    await asyncio.sleep(0.05)
    abandoned.cancel()
    await asyncio.sleep(0.01)
    slow.set()
    assert (await kept)[0] == expected_leaf_hash(items[3])
    assert abandoned.cancelled()
    assert loaded == [1]
    await repo.pool.close()


def test_a_trees_tiles_are_listed_upper_levels_first_and_newest_first() -> None:
    assert tree_tiles(0) == []
    assert tree_tiles(1) == [(0, 0, 1)]
    assert tree_tiles(256) == [(1, 0, 1), (0, 0, 256)]
    assert tree_tiles(1290) == [(1, 0, 5), (0, 5, 10), (0, 4, 256), (0, 3, 256), (0, 2, 256), (0, 1, 256), (0, 0, 256)]
    big = tree_tiles(256**3 + 1)
    assert big[:3] == [(3, 0, 1), (2, 0, 256), (1, 255, 256)]
    assert len(big) == 1 + 1 + 256 + 65537


async def test_the_warm_up_fills_the_cache_and_evicts_nothing(db_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """After the warm-up a proof reads nothing; a cache smaller than the tree takes the upper tiles and the
    newest entries' tiles, keeps what proofs loaded before it, and the server says what the tree would need."""
    repo, seq = await _log(db_url, Signer.generate(ORIGIN))
    items = [pending(i) for i in range(1290)]
    await seq.append(items)
    leaves = [expected_leaf_hash(p) for p in items]
    loaded = _count_reads(repo)
    whole = ProofService(repo, 100)
    assert await whole.prewarm(1290) == 7
    assert loaded == [7]
    for i in (0, 300, 1289):
        assert await whole.inclusion(i, 1290) == (leaves[i], reference.path(i, leaves))
    assert await whole.consistency(7, 1290) == reference.proof(7, leaves)
    assert loaded == [7]

    small = ProofService(repo, 4)
    loaded.clear()
    await small.inclusion(0, 1290)  # caches (0, 0), the partial (0, 5) and (1, 0)
    with caplog.at_level(logging.INFO, logger="atlas_log_server.log.proofs"):
        assert await small.prewarm(1290) == 1  # room for one more: the newest full level-0 tile
    assert "ATLAS_TILE_CACHE_TILES=7 keeps them all" in caplog.text
    assert loaded == [3, 1]
    for i in (0, 1289, 1100):
        await small.inclusion(i, 1290)
    assert loaded == [3, 1]
    assert await ProofService(repo, 0).prewarm(1290) == 0
    await repo.pool.close()


async def test_a_failed_warm_up_is_reported_not_raised(db_url: str, caplog: pytest.LogCaptureFixture) -> None:
    repo, seq = await _log(db_url, Signer.generate(ORIGIN))
    await seq.append([pending(i) for i in range(10)])

    async def broken() -> None:
        raise StorageError("no tiles today")

    _count_reads(repo, broken)
    with caplog.at_level(logging.WARNING, logger="atlas_log_server.log.proofs"):
        assert await ProofService(repo, 100).prewarm(10) == 0
    assert "tile cache warm-up stopped after 0 tiles: no tiles today" in caplog.text
    await repo.pool.close()


async def test_each_proof_reads_from_its_own_database(db_url: str, pg_url: str) -> None:
    """A proof pinned to a read replica that lags and one on the primary, missing tiles at the same moment,
    are each read where they belong: neither is answered from (or failed by) the other's database."""
    signer = Signer.generate(ORIGIN)
    repo, seq = await _log(db_url, signer)
    items = [pending(i) for i in range(200)]
    await seq.append(items[:100])
    await repo.pool.close()
    name = urlsplit(db_url).path.lstrip("/")
    lagging = with_database(pg_url, name + "_lag")
    conn = await asyncpg.connect(pg_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}_lag" TEMPLATE "{name}"')
    finally:
        await conn.close()
    repo, seq = await _log(db_url, signer)
    await seq.append(items[100:])
    replica = await create_pool(lagging, 2)
    leaves = [expected_leaf_hash(p) for p in items]
    proofs = ProofService(repo, 100)

    async def on_replica() -> tuple[bytes, list[bytes]]:
        with pinned(replica):
            return await proofs.inclusion(50, 100)

    try:
        old, new = await asyncio.gather(on_replica(), proofs.inclusion(150, 200))
        assert old == (leaves[50], reference.path(50, leaves[:100]))
        assert new == (leaves[150], reference.path(150, leaves))
    finally:
        await replica.close()
        await repo.pool.close()
        conn = await asyncpg.connect(pg_url)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}_lag" WITH (FORCE)')
        await conn.close()


def test_a_service_outlives_its_event_loop(db_url: str) -> None:
    """A read left unfinished when a loop closes does not poison the tile for the next loop."""

    async def first() -> ProofService:
        repo, seq = await _log(db_url, Signer.generate(ORIGIN))
        await seq.append([pending(i) for i in range(10)])
        proofs = ProofService(repo, 100)
        # What a loop closed in the middle of a read leaves behind: a tile queued, its future never resolved.
        proofs._loop = asyncio.get_running_loop()
        proofs._queued = {repo.pool: [(0, 0, 10)]}
        proofs._reading[(repo.pool, (0, 0, 10))] = asyncio.get_running_loop().create_future()
        await repo.pool.close()
        return proofs

    proofs = asyncio.run(first())

    async def second() -> bytes:
        proofs.repo = Repository(await create_pool(db_url, 2), ORIGIN)
        try:
            return (await asyncio.wait_for(proofs.inclusion(3, 10), 10))[0]
        finally:
            await proofs.repo.pool.close()

    assert asyncio.run(second()) == expected_leaf_hash(pending(3))
