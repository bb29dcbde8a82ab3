"""Receipts: where a submission ended up, proved against a signed checkpoint from one consistent snapshot and
verified before anyone is told; and the same receipt upgraded to a witness-cosigned (published) checkpoint."""

from __future__ import annotations

import asyncio

from atlas_log.merkle import leaf_hash, verify_inclusion
from atlas_log.receipt import Receipt
from atlas_log_server.db.repository import Repository
from atlas_log_server.errors import Internal, InvalidRequest, Unavailable
from atlas_log_server.log.proofs import ProofService
from atlas_log_server.log.sequencer import Sequenced

WITNESS_WAIT_S = 30.0
"""How long a submission asking for a witnessed receipt waits for a published checkpoint that includes it."""


class Receipts:
    """Builds receipts for sequenced entries. ``witnessed`` says whether the log has witnesses configured
    (only then can a receipt be upgraded to a published checkpoint)."""

    def __init__(
        self, repo: Repository, proofs: ProofService, *, witnessed: bool, wait_s: float = WITNESS_WAIT_S
    ) -> None:
        self.repo = repo
        self.proofs = proofs
        self.has_witnesses = witnessed
        self.wait_s = wait_s

    async def receipt(self, entry_id: bytes, placed: Sequenced) -> Receipt:
        """The receipt of the entry ``entry_id`` sequenced at ``placed``: against its batch's checkpoint when
        the batch added it, else against the log's current checkpoint. Raises :class:`Unavailable` when what
        it needs is not readable yet, and a proof error if the proof does not verify (never returned)."""
        batch = placed.batch
        if batch.old_size <= placed.index < batch.checkpoint.size:
            size, note, root = batch.checkpoint.size, batch.note, batch.checkpoint.root_hash
            hashes = batch.inclusion_proof(placed.index)
        else:  # logged by an earlier batch: prove against the current checkpoint, from tiles
            state = await self.repo.state()
            if state.checkpoint is None:
                raise Unavailable("not-ready", "the log has no checkpoint yet", retry_after=1)
            size, note, root = state.size, state.checkpoint, state.root_hash
            _, hashes = await self.proofs.inclusion(placed.index, size)
        if placed.created and placed.leaf is not None:
            leaf = placed.leaf
        else:
            stored = await self.repo.entry_by_index(placed.index)
            if stored is None:
                raise Unavailable("not-ready", "the entry is not readable yet", retry_after=1)
            entry_id, leaf = stored.entry_id, stored.leaf
        lh = leaf_hash(leaf)
        verify_inclusion(lh, placed.index, size, hashes, root)
        return Receipt(entry_id, placed.index, lh, leaf, size, tuple(hashes), note)

    async def witnessed(self, receipt: Receipt) -> Receipt:
        """``receipt`` proved against the first published (witness-cosigned) checkpoint that includes its entry.
        Raises :class:`InvalidRequest` when the log has no witnesses, and :class:`Unavailable` when no such
        checkpoint is published within :attr:`wait_s`."""
        if not self.has_witnesses:
            raise InvalidRequest("no-witnesses", "this log has no witnesses configured; omit wait=witnessed")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_s
        while True:
            published = await self.repo.latest_published()
            if published is not None and published[0] > receipt.log_index:
                size, note = published
                leaf_hash_, hashes = await self.proofs.inclusion(receipt.log_index, size)
                if leaf_hash_ != receipt.leaf_hash:
                    raise Internal("internal-error", "the published tree disagrees with the receipt")
                return Receipt(
                    receipt.entry_id, receipt.log_index, receipt.leaf_hash, receipt.leaf, size, tuple(hashes), note
                )
            if loop.time() > deadline:
                raise Unavailable(
                    "witness-timeout",
                    f"entry {receipt.log_index} is logged, but no witnessed checkpoint "
                    f"includes it yet; fetch its proof later",
                    retry_after=5,
                )
            await asyncio.sleep(0.1)
