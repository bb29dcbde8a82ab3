"""In-process sequencing of pre-built entries (about 700-byte leaves) into PostgreSQL (target >= 20,000 leaves/s).

Measures, in one run on one database server:
  * ``append``: the sequencer's batch transaction called directly, batches of the default size;
  * ``submit``: the full path a request takes (queue → batcher → transaction → futures), many in flight;
  * ``copy_floor``: the same rows COPYed into a plain table with no tree work — the database's own floor,
    so ``append / copy_floor`` says how much of the database's ingest rate the log keeps.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import time

from atlas_log.checkpoint import Checkpoint, sign_checkpoint
from atlas_log.merkle import EMPTY_ROOT
from atlas_log.note import Signer
from atlas_log_server.config import DEFAULT_BATCH_MAX_SIZE
from atlas_log_server.db.engine import create_pool
from atlas_log_server.db.repository import Repository
from atlas_log_server.log.sequencer import PendingEntry, Sequencer
from atlas_log_server.log.signer import CheckpointSigner
from bench.common import fresh_database, report

ORIGIN = "bench.example/log"
LEAF_BYTES = 700  # about the size of a real entry leaf


def make(n: int, tag: bytes) -> list[PendingEntry]:
    out = []
    pad = os.urandom((LEAF_BYTES - 100) // 2).hex().encode()
    for i in range(n):
        body = b'{"n":' + str(i).encode() + b',"pad":"' + pad + b'","tag":"' + tag + b'"}'
        out.append(PendingEntry(hashlib.sha256(body).digest(), body, b"{}", 1_795_000_000))
    return out


async def main(n: int, url: str) -> None:
    pool = await create_pool(url, 8)
    signer = Signer.generate(ORIGIN)
    repo = Repository(pool, ORIGIN)
    await repo.init_log(sign_checkpoint(Checkpoint(ORIGIN, 0, EMPTY_ROOT), signer))
    seq = Sequencer(repo, CheckpointSigner(signer), max_batch=DEFAULT_BATCH_MAX_SIZE, max_age_s=0.01, max_pending=n + 1)

    items = make(n, b"append")
    start = time.perf_counter()
    for i in range(0, n, DEFAULT_BATCH_MAX_SIZE):
        await seq.append(items[i : i + DEFAULT_BATCH_MAX_SIZE])
    append_s = time.perf_counter() - start

    items = make(n, b"submit")
    task = asyncio.create_task(seq.run())
    start = time.perf_counter()
    await asyncio.gather(*(seq.submit(e) for e in items))
    submit_s = time.perf_counter() - start
    task.cancel()

    rows = [
        (e.entry_id, hashlib.sha256(b"\x00" + e.body).digest(), e.body, e.submission, e.integrated_time)
        for e in make(n, b"copy")
    ]
    async with pool.acquire() as conn:
        await conn.execute(
            "CREATE TABLE copy_floor (entry_id bytea UNIQUE, leaf_hash bytea UNIQUE, leaf bytea, "
            "submission bytea, integrated_time bigint)"
        )
        start = time.perf_counter()
        for i in range(0, n, DEFAULT_BATCH_MAX_SIZE):
            async with conn.transaction():
                await conn.copy_records_to_table("copy_floor", records=rows[i : i + DEFAULT_BATCH_MAX_SIZE])
        copy_s = time.perf_counter() - start
    state = await repo.state()
    await pool.close()
    assert state.size == 2 * n
    report(
        "sequencer",
        {
            "leaves": n,
            "leaf_bytes": LEAF_BYTES,
            "batch_size": DEFAULT_BATCH_MAX_SIZE,
            "append_leaves_per_s": round(n / append_s),
            "submit_leaves_per_s": round(n / submit_s),
            "copy_floor_rows_per_s": round(n / copy_s),
            "append_vs_copy_floor": round((n / append_s) / (n / copy_s), 3),
            "target_leaves_per_s": 20_000,
            "target_met": n / append_s >= 20_000 and n / submit_s >= 20_000,
        },
    )


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--leaves", type=int, default=100_000)
    asyncio.run(main(ap.parse_args().leaves, fresh_database("atlas_bench_sequencer")))
