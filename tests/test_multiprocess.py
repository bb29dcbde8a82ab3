"""Two server processes append to one database; every receipt verifies against the final checkpoint."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from atlas_log.checkpoint import open_checkpoint
from atlas_log.client import AsyncLogClient
from atlas_log.merkle import verify_consistency
from atlas_log.note import Verifier
from atlas_log.receipt import Receipt, verify_receipt
from atlas_log.testing.demo import demo_submission
from atlas_log.testing.simulate import SimulatedPlatform
from tests.conftest import ServerProcess

ENTRIES = 3_000  # many batches from each process (checked below); bench/ runs the big loads


async def _submit_all(urls: list[str], vkey: str, platform: SimulatedPlatform) -> list[Receipt]:
    key = Ed25519PrivateKey.generate()
    subs = [demo_submission(key, i, platform) for i in range(ENTRIES)]
    limits = httpx.Limits(max_connections=32)
    async with (
        httpx.AsyncClient(base_url=urls[0], timeout=60, limits=limits) as a,
        httpx.AsyncClient(base_url=urls[1], timeout=60, limits=limits) as b,
    ):
        clients = [AsyncLogClient(a, vkey), AsyncLogClient(b, vkey)]
        sem = asyncio.Semaphore(48)

        async def one(i: int) -> Receipt:
            async with sem:
                return await clients[i % 2].submit(subs[i])

        return await asyncio.gather(*(one(i) for i in range(ENTRIES)))


def test_two_processes_append_thousands_of_entries_and_all_receipts_verify(db_url: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    servers = [ServerProcess(db_url, data), ServerProcess(db_url, data)]
    try:
        vkey = servers[0].vkey
        assert servers[1].vkey == vkey
        receipts = asyncio.run(_submit_all([s.url for s in servers], vkey, servers[0].platform))
        verifier = Verifier.from_vkey(vkey)
        final_note = httpx.get(servers[1].url + "/checkpoint").content
        final = open_checkpoint(final_note, verifier)
        assert final.size == ENTRIES
        assert sorted(r.log_index for r in receipts) == list(range(ENTRIES))
        assert len({r.leaf_hash for r in receipts}) == ENTRIES
        proofs: dict[int, list[bytes]] = {}
        with httpx.Client(base_url=servers[0].url, timeout=30) as http:
            for r in receipts:
                cp = verify_receipt(r, verifier)  # the receipt's own checkpoint and inclusion proof
                if cp.size not in proofs:
                    if cp.size == final.size:
                        proofs[cp.size] = []
                    else:
                        resp = http.get("/api/v1/proofs/consistency", params={"from": cp.size, "to": final.size})
                        proofs[cp.size] = [base64.b64decode(h) for h in resp.json()["hashes"]]
                verify_consistency(cp.size, final.size, proofs[cp.size], cp.root_hash, final.root_hash)
        # Both processes really sequenced batches (the checkpoints came from more than one batch).
        assert len(proofs) > 10
    finally:
        for s in servers:
            s.stop()
