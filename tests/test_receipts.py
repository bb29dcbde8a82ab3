"""The server's receipts: proved from one consistent snapshot, and upgraded to a published checkpoint."""

from __future__ import annotations

import pytest

from atlas_log.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from atlas_log.merkle import EMPTY_ROOT, verify_inclusion
from atlas_log.note import Signer
from atlas_log_server.db.engine import create_pool
from atlas_log_server.db.repository import Repository
from atlas_log_server.errors import InvalidRequest, Unavailable
from atlas_log_server.log.proofs import ProofService
from atlas_log_server.log.receipts import Receipts
from atlas_log_server.log.sequencer import Sequencer
from atlas_log_server.log.signer import CheckpointSigner
from tests.test_storage import ORIGIN, expected_leaf_hash, pending


async def test_receipts_prove_new_and_existing_entries_and_wait_for_a_published_checkpoint(db_url: str) -> None:
    signer = Signer.generate(ORIGIN)
    repo = Repository(await create_pool(db_url, 2), ORIGIN)
    await repo.init_log(sign_checkpoint(Checkpoint(ORIGIN, 0, EMPTY_ROOT), signer))
    seq = Sequencer(repo, CheckpointSigner(signer), max_batch=8, max_age_s=0.002, max_pending=100)
    items = [pending(i) for i in range(6)]
    receipts = Receipts(repo, ProofService(repo, 10), witnessed=True, wait_s=0.3)

    first = await seq.append(items[:4])
    new = await receipts.receipt(items[2].entry_id, first[2])
    later = await seq.append(items[4:])
    again = (await seq.append([items[2]]))[0]  # logged by an earlier batch: proved against the current tree
    existing = await receipts.receipt(items[2].entry_id, again)
    assert (new.tree_size, existing.tree_size) == (4, 6) and new.leaf == existing.leaf
    for r in (new, existing):
        cp = open_checkpoint(r.checkpoint, signer.verifier)
        assert r.leaf_hash == expected_leaf_hash(items[2]) and r.entry_id == items[2].entry_id
        verify_inclusion(r.leaf_hash, 2, cp.size, list(r.hashes), cp.root_hash)

    # Nothing published yet: the wait ends with a retryable answer, never a hang.
    with pytest.raises(Unavailable) as caught:
        await receipts.witnessed(new)
    assert caught.value.slug == "witness-timeout" and caught.value.retry_after == 5
    await repo.publish(6, later[0].batch.note, 1)
    witnessed = await receipts.witnessed(new)
    assert witnessed.tree_size == 6 and witnessed.checkpoint == later[0].batch.note
    cp = open_checkpoint(witnessed.checkpoint, signer.verifier)
    verify_inclusion(witnessed.leaf_hash, 2, 6, list(witnessed.hashes), cp.root_hash)

    with pytest.raises(InvalidRequest, match="no witnesses configured"):
        await Receipts(repo, ProofService(repo, 10), witnessed=False).witnessed(new)
    await repo.pool.close()
