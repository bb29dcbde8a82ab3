"""The map builder on real PostgreSQL: incremental versions equal a rebuild from the leaves, every committed
root is the map of the leaves it covers, proofs served from storage verify, and a crash between storing a
version and committing it loses nothing."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import random

import pytest

from atlas_log.checkpoint import Checkpoint, sign_checkpoint
from atlas_log.entry import IndexRow, parse_leaf
from atlas_log.merkle import EMPTY_ROOT, LeafHash, RootHash, leaf_hash, verify_inclusion
from atlas_log.note import Signer
from atlas_log.vmap import MapCommitment, MapProof, MemoryMap, map_changes, map_key, verify_map_proof
from atlas_log_server.db.engine import create_pool
from atlas_log_server.db.repository import Repository
from atlas_log_server.db.vmap import MapRepository
from atlas_log_server.log.completeness import Completeness
from atlas_log_server.log.map_builder import MapBuilder, commitment_entry, rebuild
from atlas_log_server.log.proofs import ProofService
from atlas_log_server.log.sequencer import PendingEntry, Sequencer
from atlas_log_server.log.signer import CheckpointSigner

ORIGIN = "test.example/map"
DIGESTS = [f"sha256:{hashlib.sha256(b'artifact %d' % i).hexdigest()}" for i in range(60)]


def pending(i: int, names: list[str], components: list[str] = ()) -> PendingEntry:  # type: ignore[assignment]
    """An entry naming ``names`` as subjects (linked in its leaf) and ``components`` (not linked: the map
    learns them from the artifact index, as from a model's file list); its body records both for the
    reference."""
    body = json.dumps({"n": i, "named": sorted({*names, *components})}, separators=(",", ":")).encode()
    rows = tuple(IndexRow(d, "subject", None, f"$.subject[{j}]", None) for j, d in enumerate(names))
    rows += tuple(IndexRow(d, "component", None, f"$.predicate.resources[{j}]", None) for j, d in enumerate(components))
    # A signer key is indexed too, and is not an artifact of the map.
    rows += (IndexRow(f"sha256:{i:064x}", "signer", None, "$.signatures[0]", None),)
    return PendingEntry(hashlib.sha256(body).digest(), body, b"{}", 1, tuple(sorted(names)), rows)


async def _setup(db_url: str) -> tuple[Repository, Sequencer, MapRepository, asyncio.Task[None]]:
    signer = Signer.generate(ORIGIN)
    pool = await create_pool(db_url, 6)
    repo = Repository(pool, ORIGIN)
    await repo.init_log(sign_checkpoint(Checkpoint(ORIGIN, 0, EMPTY_ROOT), signer))
    seq = Sequencer(repo, CheckpointSigner(signer), max_batch=64, max_age_s=0.002, max_pending=100_000)
    return repo, seq, MapRepository(pool), asyncio.create_task(seq.run())


async def _leaves(repo: Repository, size: int) -> list[bytes]:
    return await repo.leaves(0, size)


def _expected(leaves: list[bytes], size: int) -> MemoryMap:
    """The reference: the map of what each entry's body says it names (commitments name nothing)."""
    m = MemoryMap()
    m.update(
        map_changes((i, named) for i, leaf in enumerate(leaves[:size]) if (named := parse_leaf(leaf).body.get("named")))
    )
    return m


async def test_incremental_versions_are_the_map_of_the_leaves_and_proofs_verify(db_url: str) -> None:
    repo, seq, maps, task = await _setup(db_url)
    builder = MapBuilder(maps, repo, seq, 0.01)
    rnd = random.Random(7)
    n = 0
    try:
        for round_ in range(6):
            await seq.append(
                [
                    pending(n + i, rnd.sample(DIGESTS, rnd.randint(0, 3)), rnd.sample(DIGESTS, rnd.randint(0, 2)))
                    for i in range(rnd.randint(1, 40))
                ]
            )
            n += 40
            while await builder.step():
                pass
            latest = await maps.latest()
            assert latest is not None and latest.commitment_index is not None
            leaves = await _leaves(repo, (await repo.state()).size)
            # The commitment entry is in the log and commits exactly the map of the leaves before its size.
            commitment = MapCommitment.from_body(parse_leaf(leaves[latest.commitment_index]).body)
            assert commitment.tree_size == latest.tree_size <= latest.commitment_index
            expected = _expected(leaves, commitment.tree_size)
            assert (commitment.root, commitment.keys) == (expected.root, expected.keys)
            # A round with nothing new adds no commitment (the log does not commit its own commitments).
            size = (await repo.state()).size
            assert not await builder.step() and (await repo.state()).size == size
            # Proofs served from storage verify against the committed root, for present and absent keys.
            completeness = Completeness(maps, repo, ProofService(repo, 0))
            answer = await completeness.prove([*DIGESTS[:10], "sha256:" + "0" * 64], size)
            assert answer is not None
            item = answer["commitment"]
            assert item["logIndex"] == latest.commitment_index
            verify_inclusion(
                LeafHash(leaf_hash(leaves[item["logIndex"]])),
                item["logIndex"],
                size,
                [base64.b64decode(h) for h in item["inclusionProof"]],
                RootHash((await repo.state()).root_hash),
            )
            for digest, raw in answer["proofs"].items():
                key = map_key(digest)
                got = verify_map_proof(commitment.root, key, MapProof.from_json(raw))
                want = expected.prove(key)
                assert got == (want.leaf.value if want.leaf is not None and want.leaf.key == key else None), round_
        # A rebuild from the leaves alone gives the byte-identical root.
        latest = await maps.latest()
        assert latest is not None
        version, writes = await rebuild(maps, latest.tree_size)
        assert version.root == latest.root and version.keys == latest.keys
        await maps.replace_all(latest.tree_size, version.root, version.keys, writes)
        # ... and the builder carries on from the rebuilt nodes.
        await seq.append([pending(10_000 + i, rnd.sample(DIGESTS, 2)) for i in range(30)])
        while await builder.step():
            pass
        latest = await maps.latest()
        assert latest is not None
        assert latest.root == _expected(await _leaves(repo, latest.tree_size), latest.tree_size).root
    finally:
        task.cancel()
        await repo.pool.close()


async def test_a_version_stored_but_not_committed_is_committed_first(db_url: str) -> None:
    repo, seq, maps, task = await _setup(db_url)
    builder = MapBuilder(maps, repo, seq, 0.01)
    try:
        await seq.append([pending(i, [DIGESTS[i % 5]]) for i in range(20)])
        commit = builder._commit

        async def crash(version: object) -> None:
            raise RuntimeError("killed between storing the version and committing it")

        builder._commit = crash  # type: ignore[method-assign]
        with pytest.raises(RuntimeError):
            await builder.step()
        builder._commit = commit  # type: ignore[method-assign]
        stored = await maps.latest()
        assert stored is not None and stored.commitment_index is None and stored.tree_size == 20
        await seq.append([pending(100 + i, [DIGESTS[7]]) for i in range(5)])
        assert await builder.step()  # commits the stored version first, then folds the new leaves
        committed = await maps.version(20)
        assert committed is not None and committed.commitment_index == 25
        while await builder.step():
            pass
        latest = await maps.latest()
        assert latest is not None and latest.tree_size == 26 and latest.commitment_index == 26
        # Committing again (a retry after a crash) is the same entry, not a second one.
        again = await seq.submit(commitment_entry(committed, 1))
        assert again.index == 25 and not again.created
    finally:
        task.cancel()
        await repo.pool.close()


async def test_only_one_builder_works_at_a_time(db_url: str) -> None:
    repo, seq, maps, task = await _setup(db_url)
    try:
        await seq.append([pending(i, [DIGESTS[i % 9]]) for i in range(50)])
        builders = [MapBuilder(maps, repo, seq, 0.01) for _ in range(3)]
        await asyncio.gather(*(b.step() for b in builders))
        for b in builders:
            while await b.step():
                pass
        rows = await repo.pool.fetch("SELECT tree_size, commitment_idx FROM map_versions ORDER BY tree_size")
        assert [(r["tree_size"], r["commitment_idx"]) for r in rows] == [(50, 50)]
    finally:
        task.cancel()
        await repo.pool.close()
