"""The sequencer: batches admitted entries and appends each batch in one PostgreSQL transaction.

One batch = lock the tree-state row, skip entries already logged, assign indices, insert the entries,
extend the tiles, compute the new root from the stored right-edge frontier, sign a checkpoint (after
proving it consistent with the previous one), commit. Only then are the waiting submitters told.
Several processes may run a sequencer on one database: the row lock serialises their batches.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from atlas_log.checkpoint import Checkpoint, open_checkpoint, succession
from atlas_log.entry import IndexRow, encode_leaf
from atlas_log.errors import FormatError
from atlas_log.merkle import (
    HASH_SIZE,
    CompactRange,
    Hash,
    NodeSource,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
)
from atlas_log.note import Verifier
from atlas_log.tiles import TILE_HEIGHT, TILE_WIDTH
from atlas_log_server.db.engine import database_unavailable, row_refused
from atlas_log_server.db.repository import BatchTransaction, Repository, StorageError, StoredEntry
from atlas_log_server.errors import Conflict, Gone, Unavailable
from atlas_log_server.log.signer import CheckpointSigner, SignerUnavailable, SigningRefused
from atlas_log_server.metrics import Metrics
from atlas_log_server.vault import Sealed

_log = logging.getLogger(__name__)

SETTLE_INTERVAL_S = 1.0  # how often an idle sequencer tries to settle a batch whose commit was lost
PENDING_WAIT_S = 3 * SETTLE_INTERVAL_S  # how long a batch waits for another process to settle one


class Overloaded(Unavailable):
    """Too many entries are waiting for a batch (or the server is stopping); the caller should retry soon."""

    def __init__(self, detail: str) -> None:
        super().__init__("overloaded", detail, retry_after=1)


class LogFrozen(Gone):
    """The log was frozen: it is read-only. ``note`` is its final checkpoint (signed by ``verifier``'s key);
    the detail names the successor it declares, if any."""

    def __init__(self, note: bytes, verifier: Verifier) -> None:
        found = succession(open_checkpoint(note, verifier))
        where = f"; its successor is {found.url} (key {found.vkey})" if found is not None and found.url else ""
        super().__init__("log-frozen", f"this log is frozen and accepts no entries{where}")
        self.note = note


class QuoteReused(Conflict):
    """The entry's quote already attests another entry (``index``): one attestation, one entry."""

    def __init__(self, index: int) -> None:
        super().__init__(
            "quote-reused",
            f"this TDX quote already attests entry {index}, and a quote attests one entry: make a fresh quote "
            f"for this statement (or, for a key-binding quote, refer to entry {index} with "
            f"tee.keyAttestationEntry)",
        )
        self.index = index


@dataclass(frozen=True, slots=True)
class PendingEntry:
    """An admitted entry waiting for an index; its leaf is built when the index (and back-links) are known."""

    entry_id: bytes
    body: bytes  # canonical JSON of the entry body
    submission: bytes
    integrated_time: int
    linked: tuple[str, ...] = ()  # subject and material digests ("alg:hex") the leaf links back for
    rows: tuple[IndexRow, ...] = ()  # what the artifact index stores of it
    predicate_type: str | None = None
    quote_sha256: bytes | None = None  # SHA-256 of what its own quote's attestation key signed, if it has a quote
    sealed: Sealed | None = None  # its disclosures, encrypted (a confidential entry)
    tenant: str | None = None  # who submitted it (None on a log without tenants)


class BatchNodes:
    """Node source for the tree right after a batch: the old frontier plus every node the batch completed.

    It can serve any node an inclusion proof of a new leaf, or a consistency proof from the old size, needs.
    """

    __slots__ = ("nodes", "old_size")

    def __init__(self, old: CompactRange) -> None:
        self.old_size = old.size
        self.nodes: dict[tuple[int, int], bytes] = {(h, i): d for h, i, d in old.nodes()}

    def add(self, height: int, index: int, digest: bytes) -> None:
        self.nodes[(height, index)] = digest

    def __call__(self, height: int, index: int) -> bytes:
        d = self.nodes.get((height, index))
        if d is None:
            if height == 0:
                raise LookupError(f"leaf {index} is not part of this batch")
            # A node straddling the old right edge: combine its halves.
            d = node_hash(self(height - 1, 2 * index), self(height - 1, 2 * index + 1))
            self.nodes[(height, index)] = d
        return d


@dataclass(slots=True)
class Batch:
    """The outcome of one committed batch: the signed checkpoint and the nodes to prove its new leaves."""

    checkpoint: Checkpoint
    note: bytes
    old_size: int
    source: NodeSource

    def inclusion_proof(self, index: int) -> list[Hash]:
        """Proof for a leaf this batch added, against this batch's checkpoint."""
        if not self.old_size <= index < self.checkpoint.size:
            raise LookupError(f"index {index} was not added by this batch")
        return inclusion_proof(index, self.checkpoint.size, self.source)


@dataclass(frozen=True, slots=True)
class Sequenced:
    """Where an entry ended up: its index, whether this submission created it, the batch, and (when it did)
    the leaf it became; or ``refused``, why it was not logged (then ``index`` is the entry it conflicts with)."""

    index: int
    created: bool
    batch: Batch
    leaf: bytes | None = None
    refused: QuoteReused | None = None


def _tile_writes(rows: dict[int, tuple[int, bytearray]]) -> list[tuple[int, int, int, bytes]]:
    """Split new node hashes per tile level into ``(level, tile index, existing width, appended hashes)``."""
    writes = []
    for level, (first, data) in rows.items():
        pos, off = first, 0
        while off < len(data):
            within = pos % TILE_WIDTH
            take = min(TILE_WIDTH - within, (len(data) - off) // HASH_SIZE)
            writes.append((level, pos // TILE_WIDTH, within, bytes(data[off : off + take * HASH_SIZE])))
            pos += take
            off += take * HASH_SIZE
    return writes


@dataclass(frozen=True, slots=True)
class _Writes:
    """What one batch writes: its rows, then (once signed) its checkpoint. Kept while its COMMIT's outcome is
    unknown, to write the same tree again."""

    previous: Checkpoint
    checkpoint: Checkpoint
    frontier: Sequence[bytes]
    entries: Sequence[StoredEntry]
    index_rows: Sequence[tuple[int, str, str, str | None, str, str | None, str | None]]
    sealed_rows: Sequence[tuple[int, str | None, bytes, bytes]]
    tile_rows: dict[int, tuple[int, bytearray]]
    note: bytes = b""

    async def rows(self, tx: BatchTransaction) -> None:
        await tx.insert_entries(self.entries)
        await tx.insert_artifacts(self.index_rows)
        await tx.insert_disclosures(self.sealed_rows)
        await tx.write_tiles(_tile_writes(self.tile_rows))

    async def save(self, tx: BatchTransaction) -> None:
        await tx.save_checkpoint(self.checkpoint.size, self.checkpoint.root_hash, self.frontier, self.note)


class Sequencer:
    """Collects admitted entries into batches (by count and age) and appends them."""

    def __init__(
        self,
        repo: Repository,
        signer: CheckpointSigner,
        *,
        max_batch: int,
        max_age_s: float,
        max_pending: int,
        metrics: Metrics | None = None,
    ) -> None:
        self.repo = repo
        self.metrics = metrics
        self.signer = signer
        self.max_batch = max_batch
        self.max_age_s = max_age_s
        self._queue: asyncio.Queue[tuple[PendingEntry, asyncio.Future[Sequenced]]] = asyncio.Queue(max_pending)
        self._analyzing: asyncio.Task[None] | None = None
        self._unsettled: _Writes | None = None  # a signed batch whose COMMIT's outcome is unknown
        self._settle_failure: str | None = None  # why committing it again failed last

    async def submit(self, entry: PendingEntry) -> Sequenced:
        """Queue ``entry`` and wait until its batch has committed; raises :class:`Overloaded` when full."""
        fut: asyncio.Future[Sequenced] = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait((entry, fut))
        except asyncio.QueueFull:
            raise Overloaded("too many entries waiting to be sequenced") from None
        return await fut

    async def _next(self) -> tuple[PendingEntry, asyncio.Future[Sequenced]]:
        """The next queued entry; meanwhile, a batch whose commit was lost is settled as soon as the database
        answers, so the processes sharing the key are not kept refusing until a submission arrives here."""
        while self._unsettled is not None:
            try:
                return await asyncio.wait_for(self._queue.get(), SETTLE_INTERVAL_S)
            except TimeoutError:
                with contextlib.suppress(Exception):  # the database is still away: next time
                    await self._settle()
        return await self._queue.get()

    async def run(self) -> None:
        """Batch forever; cancel the task to stop (queued submitters are then failed)."""
        loop = asyncio.get_running_loop()
        try:
            while True:
                batch = [await self._next()]
                deadline = loop.time() + self.max_age_s
                while len(batch) < self.max_batch:
                    try:
                        batch.append(self._queue.get_nowait())
                        continue
                    except asyncio.QueueEmpty:
                        pass
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    try:
                        batch.append(await asyncio.wait_for(self._queue.get(), remaining))
                    except TimeoutError:
                        break
                waiting = [(e, f) for e, f in batch if not f.done()]
                if not waiting:
                    continue
                started = loop.time()
                outcomes = await self._append_isolating(waiting)
                done = [r for r in outcomes if isinstance(r, Sequenced)]
                if done:
                    newest = max((r.batch for r in done), key=lambda b: b.checkpoint.size)
                    self._analyze_on_growth(newest)
                    if self.metrics is not None:
                        self.metrics.batch_entries.observe(len(done))
                        self.metrics.batch_seconds.observe(loop.time() - started)
                        self.metrics.tree_size.set(newest.checkpoint.size)
                for (_, f), r in zip(waiting, outcomes, strict=True):
                    if f.done():
                        continue
                    if isinstance(r, Exception):
                        f.set_exception(r)
                    elif r.refused is not None:
                        f.set_exception(r.refused)
                    else:
                        f.set_result(r)
        finally:
            if self._analyzing is not None:
                self._analyzing.cancel()
            while not self._queue.empty():
                _, f = self._queue.get_nowait()
                if not f.done():
                    f.set_exception(Overloaded("server is shutting down"))

    async def _append_isolating(
        self, waiting: Sequence[tuple[PendingEntry, asyncio.Future[Sequenced]]]
    ) -> list[Sequenced | Exception]:
        """Append the batch; if the database refuses a row of it (or an entry cannot be encoded), append each
        half on its own, down to the failing entry: a poisoned entry fails only its own submission, in about
        2·log2(batch) transactions. Any other failure (database away, log frozen, signer refusing) fails the
        whole batch, as it would fail any part of it."""
        try:
            return list(await self._append_after_settling([e for e, _ in waiting]))
        except Exception as exc:
            if len(waiting) > 1 and (row_refused(exc) or isinstance(exc, FormatError)):
                _log.warning("batch of %d entries failed (%s); isolating the failing entry", len(waiting), exc)
                mid = len(waiting) // 2
                return [*await self._append_isolating(waiting[:mid]), *await self._append_isolating(waiting[mid:])]
            if database_unavailable(exc):
                _log.warning("batch of %d entries failed: database unavailable: %s", len(waiting), exc)
            elif isinstance(exc, SigningRefused | SignerUnavailable):  # the message says what to do
                _log.error("batch of %d entries not signed: %s", len(waiting), exc)
            elif not isinstance(exc, LogFrozen):  # a frozen log refusing entries is no failure
                _log.exception("batch of %d entries failed", len(waiting))
            return [exc] * len(waiting)

    async def _append_after_settling(self, entries: Sequence[PendingEntry]) -> list[Sequenced]:
        """:meth:`append`; while the database is at the base of a checkpoint another process signed and lost the
        commit of, wait a little for that process to commit it again (:meth:`_settle`) before refusing."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + PENDING_WAIT_S
        while True:
            try:
                return await self.append(entries)
            except SigningRefused as exc:
                if not exc.pending or loop.time() >= deadline:
                    raise
            await asyncio.sleep(0.1)

    async def _sign(self, previous: Checkpoint, checkpoint: Checkpoint, proof: Sequence[bytes]) -> bytes:
        """Sign; an external signer off the event loop. Cancelled meanwhile (a shutdown), its thread still signs
        and records the checkpoint: wait for it and take it back, as this batch will not commit."""
        if not self.signer.external:
            # A key file signs in well under a millisecond (plus the record's fsync): inline, because a thread's
            # result waits for the busy event loop while this batch holds the log's lock.
            return self.signer.sign(previous, checkpoint, proof)
        signing = asyncio.ensure_future(asyncio.to_thread(self.signer.sign, previous, checkpoint, proof))
        try:
            return await asyncio.shield(signing)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):  # not signed: nothing to take back
                await signing
                await self._withdraw(checkpoint)
            raise

    async def _withdraw(self, checkpoint: Checkpoint) -> None:
        """Take back the checkpoint of a batch that never commits; when that fails the record stays pending,
        and the server refuses writes over the batch's base (the operator decides, see ``release-pending``)."""
        try:
            await asyncio.to_thread(self.signer.withdraw, checkpoint)
        except SigningRefused as exc:
            _log.error(
                "the signed checkpoint of size %d (never committed) was not taken back: %s", checkpoint.size, exc
            )

    async def _settle(self) -> None:
        """Settle the batch whose COMMIT was lost, while the signer's record still holds its checkpoint pending
        over its base (nobody released it, froze the log or signed past it since: the record's writers all hold
        the tree-state lock, as this does). A database at that base never committed the batch, or lost it: the
        same rows and the same signed checkpoint are committed again, so no second tree of that size is
        signed. A database holding the batch needs only the record told. In any other state the batch is kept
        (a database failed over behind the base may be rolled forward to it) and the record refuses writes.
        Once the record no longer holds it, the batch is dropped. Raises only while the database is away;
        any other failure keeps the batch for the next try and is logged."""
        writes = self._unsettled
        if writes is None:
            return
        base, tree = writes.previous, writes.checkpoint
        try:
            async with self.repo.batch() as tx:
                state = await tx.lock_state()
                here = (state.size, state.root_hash)
                if here != (tree.size, tree.root_hash):
                    if not await asyncio.to_thread(self.signer.holds_pending, base, tree):
                        _log.warning("the batch of size %d whose commit was lost was released: dropped", tree.size)
                        self._unsettled = None
                        return
                    if here != (base.size, base.root_hash) or state.frozen_note is not None:
                        return
                    await writes.rows(tx)
                    await writes.save(tx)
        except Exception as exc:
            if database_unavailable(exc):
                raise
            if str(exc) != self._settle_failure:  # once per distinct failure, not every retry
                _log.error("the batch of size %d whose commit was lost is not committed yet: %s", tree.size, exc)
            self._settle_failure = str(exc)
            return
        self._unsettled = self._settle_failure = None
        _log.warning("the batch of size %d whose commit was lost is committed", tree.size)
        await asyncio.to_thread(self.signer.committed, tree)

    def _analyze_on_growth(self, batch: Batch) -> None:
        """Refresh the planner's statistics each time the log doubles (from 1,024 entries): plans made for a
        small table stay fast as it grows, whether or not autovacuum runs."""
        old, new = batch.old_size, batch.checkpoint.size
        if new < 1024 or old.bit_length() == new.bit_length() or self._analyzing is not None:
            return

        async def analyze() -> None:
            try:
                await self.repo.analyze()
            except Exception as exc:  # statistics are an optimisation; the log is correct without them
                _log.warning("refreshing table statistics failed: %s", exc)
            finally:
                self._analyzing = None

        self._analyzing = asyncio.get_running_loop().create_task(analyze())

    async def append(self, entries: Sequence[PendingEntry]) -> list[Sequenced]:
        """Append one batch in one transaction; returns where each entry is (in order)."""
        if self._unsettled is not None:
            await self._settle()  # the database is away while it fails: so would this batch
        committing: _Writes | None = None
        try:
            async with self.repo.batch() as tx:
                state = await tx.lock_state()
                if state.frozen_note is not None:
                    raise LogFrozen(state.frozen_note, self.signer.signer.verifier)
                existing = await tx.existing([e.entry_id for e in entries])
                quotes = await tx.quotes_in_use([e.quote_sha256 for e in entries if e.quote_sha256 is not None])
                frontier = CompactRange(state.size, state.frontier)
                if frontier.root() != state.root_hash:
                    raise StorageError("stored frontier does not match the stored root")
                nodes = BatchNodes(frontier)
                rows: dict[int, tuple[int, bytearray]] = {}

                def on_node(height: int, index: int, digest: bytes) -> None:
                    nodes.add(height, index, digest)
                    if height % TILE_HEIGHT == 0:
                        row = rows.get(height // TILE_HEIGHT)
                        if row is None:
                            rows[height // TILE_HEIGHT] = row = (index, bytearray())
                        row[1].extend(digest)

                placed: list[tuple[int, bool, bytes | None, QuoteReused | None]] = []
                new: list[StoredEntry] = []
                index_rows: list[tuple[int, str, str, str | None, str, str | None, str | None]] = []
                sealed_rows: list[tuple[int, str | None, bytes, bytes]] = []
                last = await tx.last_naming(sorted({d for e in entries for d in e.linked}))
                for e in entries:
                    idx = existing.get(e.entry_id)
                    if idx is not None:
                        placed.append((idx, False, None, None))
                        continue
                    if e.quote_sha256 is not None:
                        holder = quotes.get(e.quote_sha256)
                        if holder is not None:
                            placed.append((holder, False, None, QuoteReused(holder)))
                            continue
                        quotes[e.quote_sha256] = frontier.size
                    idx = frontier.size
                    existing[e.entry_id] = idx
                    links = {d: last.get(d) for d in e.linked}
                    last.update(dict.fromkeys(e.linked, idx))
                    leaf = encode_leaf(e.body, e.integrated_time, links)
                    lh = leaf_hash(leaf)
                    frontier.append(lh, on_node)
                    new.append(
                        StoredEntry(
                            idx, e.entry_id, lh, leaf, e.submission, e.integrated_time, e.predicate_type, e.quote_sha256
                        )
                    )
                    index_rows.extend(r.record(idx) for r in e.rows)
                    if e.sealed is not None:
                        sealed_rows.append((idx, e.tenant, e.sealed.wrapped_key, e.sealed.ciphertext))
                    placed.append((idx, True, leaf, None))

                previous = Checkpoint(self.repo.origin, state.size, state.root_hash)
                if new:
                    checkpoint = Checkpoint(self.repo.origin, frontier.size, frontier.root())
                    proof = consistency_proof(state.size, frontier.size, nodes) if state.size else []
                    writes = _Writes(previous, checkpoint, frontier.hashes, new, index_rows, sealed_rows, rows)
                    # Rows first: a batch the database refuses (and is retried without its failing entry) must
                    # not leave behind a signed checkpoint of a tree that never existed. Signed last, just before
                    # the commit, off the event loop (file lock, fsync, external signer).
                    await writes.rows(tx)
                    note = await self._sign(previous, checkpoint, proof)
                    writes = dataclasses.replace(writes, note=note)
                    try:
                        await writes.save(tx)
                    except BaseException:
                        # Its COMMIT is never sent: nobody sees this checkpoint, and it is taken back before the
                        # rollback releases the tree-state lock. (A COMMIT that fails is not: it may have committed.)
                        await self._withdraw(checkpoint)
                        raise
                    committing = writes
                else:
                    checkpoint = previous
                    note = state.checkpoint or b""
        except BaseException:
            if committing is not None:
                # Its COMMIT failed: the database may hold the batch or not, and says which once it answers.
                # Until then the batch is kept, to commit this same tree again if it did not (see _settle).
                self._unsettled = committing
            raise
        if new:
            await asyncio.to_thread(self.signer.committed, checkpoint)
        batch = Batch(checkpoint, note, state.size, nodes)
        return [Sequenced(idx, created, batch, leaf, refused) for idx, created, leaf, refused in placed]
