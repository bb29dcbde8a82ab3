"""``LogClient`` (sync) and ``AsyncLogClient`` over an injected httpx client.

The clients fetch; every trust decision is made by the pure functions they call (checkpoint opening,
proof verification, :func:`~atlas_log.monitor.verify_advance`). Pass ``base_url`` to the httpx client.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from atlas_log._encoding import ANSWER_LIMITS, b64decode, json_loads
from atlas_log.checkpoint import Checkpoint, open_checkpoint
from atlas_log.cosignature import CosignatureVerifier, verify_cosignatures
from atlas_log.errors import FormatError, LogAPIError
from atlas_log.merkle import LeafHash, verify_inclusion
from atlas_log.monitor import TrustedState, verify_advance
from atlas_log.note import Verifier, parse_note
from atlas_log.receipt import Receipt, verify_receipt

__all__ = ["AsyncLogClient", "LogClient"]


def _json(resp: httpx.Response) -> Any:
    if resp.status_code >= 400:
        problem_type = None
        detail = resp.text[:500]
        try:
            body: Any = json_loads(resp.content, "problem", ANSWER_LIMITS)
            problem_type, detail = body.get("type"), body.get("detail", detail)
        except (FormatError, AttributeError):
            pass
        raise LogAPIError(
            f"{resp.request.method} {resp.request.url.path}: {resp.status_code} {detail}",
            resp.status_code,
            problem_type,
        )
    try:
        return json_loads(resp.content, "response", ANSWER_LIMITS)
    except FormatError as exc:
        raise LogAPIError(f"{resp.request.url.path}: {exc}", resp.status_code) from exc


def _hashes(obj: Any, key: str = "hashes") -> list[bytes]:
    try:
        return [b64decode(h, key) for h in obj[key]]
    except (KeyError, TypeError) as exc:
        raise LogAPIError(f"malformed proof response: {exc}") from exc


def _checkpoint_bytes(resp: httpx.Response) -> bytes:
    if resp.status_code != 200:
        raise LogAPIError(f"GET /checkpoint: {resp.status_code} {resp.text[:200]}", resp.status_code)
    return resp.content


def _verified_receipt(obj: Any, verifier: Verifier) -> Receipt:
    try:
        receipt = Receipt.from_json(obj)
    except FormatError as exc:
        raise LogAPIError(f"malformed receipt: {exc}") from exc
    verify_receipt(receipt, verifier)
    return receipt


class _Base:
    def __init__(
        self, verifier: Verifier | str, state_file: Path | None, witnesses: Sequence[CosignatureVerifier], quorum: int
    ) -> None:
        self.verifier = verifier if isinstance(verifier, Verifier) else Verifier.from_vkey(verifier)
        self.trusted = TrustedState(self.verifier, state_file)
        self.witnesses = tuple(witnesses)
        self.quorum = quorum

    def _witnessed(self, note: bytes) -> None:
        """Enforce the k-of-n witness policy on a checkpoint note (no-op when quorum is 0)."""
        if self.quorum:
            verify_cosignatures(parse_note(note), self.witnesses, self.quorum)


class LogClient(_Base):
    """Synchronous client. ``http`` must carry the log's ``base_url``; ``verifier`` pins the log's key."""

    def __init__(
        self,
        http: httpx.Client,
        verifier: Verifier | str,
        *,
        state_file: Path | None = None,
        witnesses: Sequence[CosignatureVerifier] = (),
        quorum: int = 0,
    ) -> None:
        super().__init__(verifier, state_file, witnesses, quorum)
        self.http = http

    def _get(self, path: str, **params: Any) -> Any:
        try:
            return _json(self.http.get(path, params=params or None))
        except httpx.HTTPError as exc:
            raise LogAPIError(f"GET {path}: {exc}") from exc

    def checkpoint(self) -> tuple[Checkpoint, bytes]:
        """Fetch the latest checkpoint, verify its signature, and prove it extends the trusted state."""
        try:
            note = _checkpoint_bytes(self.http.get("/checkpoint"))
        except httpx.HTTPError as exc:
            raise LogAPIError(f"GET /checkpoint: {exc}") from exc
        cp = open_checkpoint(note, self.verifier)
        self._witnessed(note)
        old = self.trusted.size
        proof = self.consistency_proof(old, cp.size) if 0 < old < cp.size else []
        return self.trusted.advance(note, proof), note

    def inclusion_proof(self, index: int, tree_size: int) -> tuple[LeafHash, list[bytes]]:
        obj = self._get("/api/v1/proofs/inclusion", index=index, treeSize=tree_size)
        return LeafHash(b64decode(obj["leafHash"], "leafHash")), _hashes(obj)

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        return _hashes(self._get("/api/v1/proofs/consistency", **{"from": first, "to": second}))

    def verify_inclusion(self, leaf_hash: LeafHash, index: int, checkpoint: Checkpoint) -> None:
        """Fetch and verify the inclusion proof of ``leaf_hash`` at ``index`` against ``checkpoint``."""
        served, proof = self.inclusion_proof(index, checkpoint.size)
        if served != leaf_hash:
            raise LogAPIError(f"log serves a different leaf at index {index}")
        verify_inclusion(leaf_hash, index, checkpoint.size, proof, checkpoint.root_hash)

    def get_entry(self, index: int) -> dict[str, Any]:
        result: dict[str, Any] = self._get(f"/api/v1/entries/{index}")
        return result

    def submit(self, submission: dict[str, Any]) -> Receipt:
        """POST an entry; the receipt is verified before it is returned."""
        try:
            obj = _json(self.http.post("/api/v1/entries", json=submission))
        except httpx.HTTPError as exc:
            raise LogAPIError(f"POST /api/v1/entries: {exc}") from exc
        return _verified_receipt(obj, self.verifier)

    def verify_receipt_current(self, receipt: Receipt) -> Checkpoint:
        """Verify a receipt, then prove its checkpoint is consistent with the log's latest (trusted, and under a
        witness policy witnessed) one: this upgrades a receipt to a witnessed checkpoint."""
        cp = verify_receipt(receipt, self.verifier)
        latest, note = self.checkpoint()
        if latest.size > cp.size:
            verify_advance(self.verifier, receipt.checkpoint, note, self.consistency_proof(cp.size, latest.size))
        return latest


class AsyncLogClient(_Base):
    """The asynchronous twin of :class:`LogClient` over an ``httpx.AsyncClient``."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        verifier: Verifier | str,
        *,
        state_file: Path | None = None,
        witnesses: Sequence[CosignatureVerifier] = (),
        quorum: int = 0,
    ) -> None:
        super().__init__(verifier, state_file, witnesses, quorum)
        self.http = http

    async def _get(self, path: str, **params: Any) -> Any:
        try:
            return _json(await self.http.get(path, params=params or None))
        except httpx.HTTPError as exc:
            raise LogAPIError(f"GET {path}: {exc}") from exc

    async def checkpoint(self) -> tuple[Checkpoint, bytes]:
        try:
            note = _checkpoint_bytes(await self.http.get("/checkpoint"))
        except httpx.HTTPError as exc:
            raise LogAPIError(f"GET /checkpoint: {exc}") from exc
        cp = open_checkpoint(note, self.verifier)
        self._witnessed(note)
        old = self.trusted.size
        proof = await self.consistency_proof(old, cp.size) if 0 < old < cp.size else []
        return self.trusted.advance(note, proof), note

    async def inclusion_proof(self, index: int, tree_size: int) -> tuple[LeafHash, list[bytes]]:
        obj = await self._get("/api/v1/proofs/inclusion", index=index, treeSize=tree_size)
        return LeafHash(b64decode(obj["leafHash"], "leafHash")), _hashes(obj)

    async def consistency_proof(self, first: int, second: int) -> list[bytes]:
        return _hashes(await self._get("/api/v1/proofs/consistency", **{"from": first, "to": second}))

    async def verify_inclusion(self, leaf_hash: LeafHash, index: int, checkpoint: Checkpoint) -> None:
        served, proof = await self.inclusion_proof(index, checkpoint.size)
        if served != leaf_hash:
            raise LogAPIError(f"log serves a different leaf at index {index}")
        verify_inclusion(leaf_hash, index, checkpoint.size, proof, checkpoint.root_hash)

    async def get_entry(self, index: int) -> dict[str, Any]:
        result: dict[str, Any] = await self._get(f"/api/v1/entries/{index}")
        return result

    async def submit(self, submission: dict[str, Any]) -> Receipt:
        try:
            obj = _json(await self.http.post("/api/v1/entries", json=submission))
        except httpx.HTTPError as exc:
            raise LogAPIError(f"POST /api/v1/entries: {exc}") from exc
        return _verified_receipt(obj, self.verifier)
