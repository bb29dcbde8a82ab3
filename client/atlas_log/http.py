"""``LogClient`` (sync) and ``AsyncLogClient`` over an injected httpx client.

The clients fetch; every trust decision is made by the pure functions they call (checkpoint opening,
proof verification, :func:`~atlas_log.monitor.verify_advance`). Pass ``base_url`` to the httpx client.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from atlas_log._encoding import ANSWER_LIMITS, b64decode, json_loads
from atlas_log.checkpoint import Checkpoint, open_checkpoint
from atlas_log.cosignature import DEFAULT_WINDOW, CosignatureVerifier, CosignatureWindow, verify_cosignatures
from atlas_log.errors import FormatError, LogAPIError
from atlas_log.history import HistoryCache, VerifiedHistory, verify_history
from atlas_log.intoto import normalise_digest
from atlas_log.merkle import LeafHash, verify_inclusion
from atlas_log.monitor import TrustedState, verify_advance
from atlas_log.note import Verifier, parse_note
from atlas_log.receipt import Receipt, SubmittedEntry, verify_receipt, verify_receipt_for

__all__ = ["AsyncLogClient", "LogClient"]

MAX_PROVED_CHECKPOINTS = 1024
DEFAULT_HISTORY_PAGE = 500


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


def _parsed_receipt(obj: Any) -> Receipt:
    try:
        return Receipt.from_json(obj)
    except FormatError as exc:
        raise LogAPIError(f"malformed receipt: {exc}") from exc


class _Base:
    def __init__(
        self,
        verifier: Verifier | str,
        state_file: Path | None,
        witnesses: Sequence[CosignatureVerifier],
        quorum: int,
        window: CosignatureWindow,
    ) -> None:
        self.verifier = verifier if isinstance(verifier, Verifier) else Verifier.from_vkey(verifier)
        self.trusted = TrustedState(self.verifier, state_file)
        self.witnesses = tuple(witnesses)
        self.quorum = quorum
        self.window = window
        # Checkpoints already proved consistent with the trusted state, (size, root): receipts of one batch share
        # a checkpoint, so one proof serves them all. Consistency is transitive, so later advances keep them valid.
        self._consistent: set[tuple[int, bytes]] = set()

    def _witnessed(self, note: bytes) -> None:
        """Enforce the k-of-n witness policy on a checkpoint note, with cosignature dates checked against
        this machine's clock (no-op when quorum is 0)."""
        if self.quorum:
            verify_cosignatures(parse_note(note), self.witnesses, self.quorum, now=int(time.time()), window=self.window)

    def _open(self, note: bytes) -> Checkpoint:
        """The checkpoint in ``note``, signed by the log and, under a witness policy, witnessed: the only way a
        client accepts a checkpoint, whether fetched, in a receipt or in an answer (a history page)."""
        cp = open_checkpoint(note, self.verifier)
        self._witnessed(note)
        return cp

    def _submit_params(self) -> dict[str, str] | None:
        # Under a witness policy only a receipt proved against a cosigned checkpoint can be accepted.
        return {"wait": "witnessed"} if self.quorum else None

    def _receipt_for(self, resp: httpx.Response, sent: SubmittedEntry) -> tuple[Receipt, Checkpoint]:
        """The receipt in ``resp``, verified (log key, witness policy) and checked to be for ``sent``."""
        receipt = _parsed_receipt(_json(resp))
        cp = verify_receipt(receipt, self.verifier, witnesses=self.witnesses, quorum=self.quorum)
        verify_receipt_for(receipt, sent, new_leaf=resp.status_code == 201)
        return receipt, cp

    def _join_span(self, cp: Checkpoint) -> tuple[int, int] | None:
        """The consistency proof (from, to) that joins ``cp`` and the trusted checkpoint, if one is needed."""
        lo, hi = sorted((cp.size, self.trusted.size))
        return (lo, hi) if self.trusted.checkpoint is not None and 0 < lo < hi else None

    def _known(self, cp: Checkpoint) -> bool:
        return (cp.size, cp.root_hash) in self._consistent

    def _join(self, note: bytes, cp: Checkpoint, proof: Sequence[bytes]) -> None:
        """Prove ``note`` consistent with the trusted state: a newer one advances it, an older one must be a
        prefix of it; raises :class:`~atlas_log.errors.InconsistentLogError` with both notes otherwise."""
        if self.trusted.note is None or cp.size >= self.trusted.size:
            self.trusted.advance(note, proof)
        else:
            verify_advance(self.verifier, note, self.trusted.note, proof)
        if len(self._consistent) >= MAX_PROVED_CHECKPOINTS:
            self._consistent.clear()
        self._consistent.add((cp.size, cp.root_hash))


class LogClient(_Base):
    """Synchronous client. ``http`` must carry the log's ``base_url``; ``verifier`` pins the log's key.

    Under a witness policy (``quorum > 0``) every checkpoint fetched must carry ``quorum`` cosignatures from
    ``witnesses`` dated inside ``cosignature_window``; give it a ``max_age_s`` to demand a current view.
    """

    def __init__(
        self,
        http: httpx.Client,
        verifier: Verifier | str,
        *,
        state_file: Path | None = None,
        witnesses: Sequence[CosignatureVerifier] = (),
        quorum: int = 0,
        cosignature_window: CosignatureWindow = DEFAULT_WINDOW,
    ) -> None:
        super().__init__(verifier, state_file, witnesses, quorum, cosignature_window)
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
        cp = self._open(note)
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
        """POST an entry and return its receipt once it is proved to be for this submission.

        The receipt must verify under the log's key and the witness policy, its leaf must be the entry built
        from ``submission`` (:func:`~atlas_log.receipt.verify_receipt_for`), and its checkpoint must be
        consistent with the trusted state (which it advances). Raises :class:`~atlas_log.errors.Error`.
        """
        sent = SubmittedEntry.from_submission(submission)
        try:
            resp = self.http.post("/api/v1/entries", json=submission, params=self._submit_params())
        except httpx.HTTPError as exc:
            raise LogAPIError(f"POST /api/v1/entries: {exc}") from exc
        receipt, _ = self._receipt_for(resp, sent)
        self.prove_consistent(receipt.checkpoint)
        return receipt

    def prove_consistent(self, note: bytes) -> Checkpoint:
        """Prove a signed checkpoint (one a receipt or an answer was proved against) consistent with the trusted
        state: a newer one advances it, an older one must be a prefix of it. Under a witness policy it must be
        witnessed first (:class:`~atlas_log.errors.SignatureError`). Raises
        :class:`~atlas_log.errors.InconsistentLogError` with both notes and the proof."""
        cp = self._open(note)
        if not self._known(cp):
            span = self._join_span(cp)
            self._join(note, cp, self.consistency_proof(*span) if span else [])
        return cp

    def history(
        self,
        artifact: str,
        *,
        page_size: int = DEFAULT_HISTORY_PAGE,
        cache: HistoryCache | None = None,
        progress: Callable[[VerifiedHistory], None] | None = None,
    ) -> VerifiedHistory:
        """Every page of ``artifact``'s history (``alg:hex``), verified about that artifact, chained page to page
        (:func:`~atlas_log.history.verify_history` with ``after=``), each page's checkpoint witnessed under the
        witness policy and proved consistent with the trusted state. The result says what was proved
        (``gap_free_from``; ``complete`` is False)."""
        alg, _, value = artifact.partition(":")
        name = ":".join(normalise_digest(alg, value))
        path = f"/api/v1/artifacts/{quote(name, safe=':')}/history"
        history: VerifiedHistory | None = None
        while history is None or history.next_before is not None:
            params: dict[str, int] = {"limit": page_size}
            if history is not None and history.next_before is not None:
                params["before"] = history.next_before
            answer = self._get(path, **params)
            history = verify_history(answer, self.verifier, name, cache=cache, after=history)
            self.prove_consistent(str(answer["checkpoint"]).encode())
            if progress is not None:
                progress(history)
        return history

    def verify_receipt_current(self, receipt: Receipt) -> Checkpoint:
        """Verify a receipt, then prove its checkpoint is consistent with the log's latest (trusted, and under a
        witness policy witnessed) one: this upgrades a receipt to a witnessed checkpoint.

        A latest checkpoint of the receipt's size must have the same root, a larger one is joined by a consistency
        proof, a smaller one is a rollback: each failure raises :class:`~atlas_log.errors.InconsistentLogError`
        carrying the receipt's checkpoint and the latest one as evidence.
        """
        cp = verify_receipt(receipt, self.verifier)
        latest, note = self.checkpoint()
        proof = self.consistency_proof(cp.size, latest.size) if latest.size > cp.size else []
        verify_advance(self.verifier, receipt.checkpoint, note, proof)
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
        cosignature_window: CosignatureWindow = DEFAULT_WINDOW,
    ) -> None:
        super().__init__(verifier, state_file, witnesses, quorum, cosignature_window)
        self.http = http
        self._join_lock = asyncio.Lock()

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
        cp = self._open(note)
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
        """See :meth:`LogClient.submit`."""
        sent = SubmittedEntry.from_submission(submission)
        try:
            resp = await self.http.post("/api/v1/entries", json=submission, params=self._submit_params())
        except httpx.HTTPError as exc:
            raise LogAPIError(f"POST /api/v1/entries: {exc}") from exc
        receipt, _ = self._receipt_for(resp, sent)
        await self.prove_consistent(receipt.checkpoint)
        return receipt

    async def prove_consistent(self, note: bytes) -> Checkpoint:
        """See :meth:`LogClient.prove_consistent`."""
        cp = self._open(note)
        # Concurrent submits must not interleave: a proof is only valid for the trusted size it was asked from.
        async with self._join_lock:
            if not self._known(cp):
                span = self._join_span(cp)
                self._join(note, cp, await self.consistency_proof(*span) if span else [])
        return cp

    async def verify_receipt_current(self, receipt: Receipt) -> Checkpoint:
        """See :meth:`LogClient.verify_receipt_current`."""
        cp = verify_receipt(receipt, self.verifier)
        latest, note = await self.checkpoint()
        proof = await self.consistency_proof(cp.size, latest.size) if latest.size > cp.size else []
        verify_advance(self.verifier, receipt.checkpoint, note, proof)
        return latest
