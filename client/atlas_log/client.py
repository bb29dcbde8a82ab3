"""``LogClient`` (sync) and ``AsyncLogClient``: every read the log's API offers, and submissions, verified.

Both are thin drivers around one sans-I/O core. Each operation is written once, as a generator that yields
:class:`~atlas_log.transport.Request` descriptions and receives :class:`~atlas_log.transport.Reply` answers;
:meth:`LogClient._run` carries them with :func:`~atlas_log.transport.send`, :meth:`AsyncLogClient._run` with
:func:`~atlas_log.transport.asend`. So request building, retrying, answer checking and verification cannot
differ between the twins.

Every trust decision is made by the pure functions the core calls (checkpoint opening, proof verification,
:mod:`atlas_log.answers`, :mod:`atlas_log.history`, :func:`~atlas_log.trusted_state.verify_advance`); every checkpoint a
client accepts, fetched or carried by an answer, is signed by the pinned key, witnessed under the witness
policy, and proved consistent with the trusted state. Errors are the :mod:`atlas_log.errors` family only.
"""

from __future__ import annotations

import asyncio
import hashlib
import http as _http_status
import time
from collections.abc import AsyncIterator, Callable, Generator, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import quote

import httpx

from atlas_log._encoding import ANSWER_LIMITS, JSON_LIMITS, JsonLimits, b64decode, json_loads
from atlas_log.answers import (
    Disclosed,
    EntryBundle,
    EntryEvidence,
    InclusionProof,
    LoggedEntry,
    LogInfo,
    SearchFilter,
    Submissions,
    Tile,
    VerifiedSearch,
    parse_collateral,
    parse_consistency,
    parse_evidence,
    parse_inclusion,
    parse_log_info,
    parse_submissions,
    parse_tile,
    served_submission,
    verify_entry,
    verify_search,
)
from atlas_log.checkpoint import Checkpoint, open_checkpoint
from atlas_log.cosignature import DEFAULT_WINDOW, CosignatureVerifier, CosignatureWindow, verify_cosignatures
from atlas_log.disclosure import BLINDING_KEY_BYTES, blinded_artifact, verify_disclosures
from atlas_log.errors import Error, FormatError, LogAPIError, LogProblemError, NotALogError, SignatureError
from atlas_log.history import (
    HistoryCache,
    MapStatus,
    VerifiedHistory,
    VerifiedLineage,
    stale_commitment,
    verify_history,
    verify_lineage,
    verify_map_status,
)
from atlas_log.intoto import artifact_digest
from atlas_log.merkle import LeafHash
from atlas_log.note import Verifier, parse_note
from atlas_log.receipt import Receipt, SubmittedEntry, verify_receipt, verify_receipt_for
from atlas_log.tdx.collateral import Collateral
from atlas_log.tiles import (
    TILE_WIDTH,
    TileAddress,
    TileLevels,
    TileSource,
    bundle_path,
    proof_tiles,
    tile_path,
    tile_width,
)
from atlas_log.transport import DEFAULT_RETRY, DEFAULT_TIMEOUT_S, Reply, Request, RetryPolicy, asend, retry_after, send
from atlas_log.trusted_state import TrustedState, verify_advance

__all__ = ["PROBLEM_BASE", "AsyncLogClient", "LogClient"]

T = TypeVar("T")
Op = Generator[Request, Reply, T]
"""An operation of the core: yields requests, is sent their replies, returns its verified result."""

PROBLEM_BASE = "https://atlas-log.dev/problems/"  # every problem type an Atlas log answers with
MAX_PROVED_CHECKPOINTS = 1024
DEFAULT_HISTORY_PAGE = 500


# --- answer checking ---------------------------------------------------------------------------------------------


def _where(reply: Reply) -> str:
    return f"{reply.method} {reply.url}"


def _error(reply: Reply) -> LogAPIError:
    """The typed error for an answer with an error status: the log's problem (title and detail), or, for a
    client error without one, a URL that is not an Atlas log."""
    body: Any = None
    if reply.media_type in ("application/problem+json", "application/json"):
        try:
            body = json_loads(reply.content, "problem", ANSWER_LIMITS)
        except FormatError:
            body = None
    kind = body.get("type") if isinstance(body, dict) else None
    if isinstance(kind, str) and kind.startswith(PROBLEM_BASE):
        assert isinstance(body, dict)
        title = str(body.get("title") or kind.removeprefix(PROBLEM_BASE))
        detail = str(body.get("detail") or "")
        message = f"{_where(reply)}: {reply.status} {title}" + (f": {detail}" if detail else "")
        return LogProblemError(message, reply.status, kind, title, detail, retry_after(reply.headers))
    try:
        phrase = _http_status.HTTPStatus(reply.status).phrase
    except ValueError:
        phrase = "error"
    if 400 <= reply.status < 500:
        return NotALogError(
            f"{_where(reply)}: {reply.status} {phrase}, not an answer of an Atlas log (is this the log's URL?)",
            reply.status,
        )
    snippet = " ".join(reply.content[:200].decode("utf-8", "replace").split())
    return LogAPIError(f"{_where(reply)}: {reply.status} {phrase}" + (f": {snippet}" if snippet else ""), reply.status)


def _ok(reply: Reply) -> Reply:
    """``reply`` if it is a success answered by a log (not an error, a redirect or an HTML page)."""
    if reply.status >= 400:
        raise _error(reply)
    if reply.status != 200 and reply.status != 201:
        raise NotALogError(f"{_where(reply)}: answered {reply.status}, not as an Atlas log", reply.status)
    if reply.media_type == "text/html":
        raise NotALogError(f"{_where(reply)}: answered with an HTML page, not as an Atlas log (is this the log's URL?)")
    return reply


def _json(reply: Reply, what: str, limits: JsonLimits = ANSWER_LIMITS) -> Any:
    try:
        return json_loads(_ok(reply).content, what, limits)
    except FormatError as exc:
        raise LogAPIError(f"{_where(reply)}: malformed answer: {exc}", reply.status) from exc


def _parsed(reply: Reply, parse: Callable[..., T], *args: Any) -> T:
    """``parse(answer, *args)`` of a JSON answer; a malformed answer is the log's error."""
    answer = _json(reply, "answer")
    try:
        return parse(answer, *args)
    except FormatError as exc:
        raise LogAPIError(f"{_where(reply)}: malformed answer: {exc}", reply.status) from exc


def _artifact_path(artifact: str, what: str) -> str:
    return f"/api/v1/artifacts/{quote(artifact, safe=':')}/{what}"


# --- the core ------------------------------------------------------------------------------------------------------


class _Core:
    """The sans-I/O core: the log's key, witness policy and trusted state, and every operation as an :data:`Op`."""

    def __init__(
        self,
        verifier: Verifier | str | None,
        state_file: Path | None,
        witnesses: Sequence[CosignatureVerifier],
        quorum: int | None,
        window: CosignatureWindow,
        tiles_only: bool = False,
    ) -> None:
        # Proofs from the static tiles and the checkpoint alone (a CDN or mirror serving nothing else).
        self.tiles_only = tiles_only
        self._verifier = (
            None if verifier is None else Verifier.from_vkey(verifier) if isinstance(verifier, str) else verifier
        )
        self._trusted = None if self._verifier is None else TrustedState(self._verifier, state_file)
        self._newest_commitment: int | None = None  # the newest map commitment an answer showed this client
        self.witnesses = tuple(witnesses)
        # Naming witnesses asks for their cosignatures: all of them unless a quorum says how many.
        self.quorum = len(self.witnesses) if quorum is None else quorum
        if not 0 <= self.quorum <= len(self.witnesses):
            raise ValueError(
                f"a quorum of {self.quorum} needs at least {self.quorum} witnesses, not {len(self.witnesses)}"
            )
        self.window = window
        # Checkpoints already proved consistent with the trusted state, (size, root): receipts of one batch share
        # a checkpoint, so one proof serves them all. Consistency is transitive, so later advances keep them valid.
        self._consistent: set[tuple[int, bytes]] = set()
        self._key_checked = False  # whether a checkpoint of the log opened under the pinned key and policy

    @property
    def verifier(self) -> Verifier:
        """The pinned log key; a client made without one reads only what carries no signed checkpoint."""
        if self._verifier is None:
            raise SignatureError("no log key is pinned: give the log's verifier key to check its checkpoints")
        return self._verifier

    @property
    def trusted(self) -> TrustedState:
        """The newest checkpoint this client verified; every later one must extend it."""
        if self._trusted is None:
            raise SignatureError("no log key is pinned: a client without one keeps no trusted state")
        return self._trusted

    def _open(self, note: bytes) -> Checkpoint:
        """The checkpoint in ``note``, signed by the log and, under a witness policy, witnessed (cosignature dates
        checked against this machine's clock): the only way a client accepts a checkpoint."""
        cp = open_checkpoint(note, self.verifier)
        if self.quorum:
            verify_cosignatures(parse_note(note), self.witnesses, self.quorum, now=int(time.time()), window=self.window)
        self._key_checked = True
        return cp

    def _join_span(self, cp: Checkpoint) -> tuple[int, int] | None:
        """The consistency proof (from, to) that joins ``cp`` and the trusted checkpoint, if one is needed."""
        lo, hi = sorted((cp.size, self.trusted.size))
        return (lo, hi) if self.trusted.checkpoint is not None and 0 < lo < hi else None

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

    # Operations. Each is a generator: ``reply = yield request``; ``return result``.

    def _log_info(self) -> Op[LogInfo]:
        return _parsed((yield Request.get("/api/v1/log")), parse_log_info)

    def _fetch_checkpoint(self) -> Op[tuple[Checkpoint, bytes]]:
        reply = _ok((yield Request.get("/checkpoint")))
        try:
            return self._open(reply.content), reply.content
        except FormatError as exc:
            raise NotALogError(f"{_where(reply)}: the answer is not a signed checkpoint: {exc}", reply.status) from exc

    def _checkpoint(self) -> Op[tuple[Checkpoint, bytes]]:
        cp, note = yield from self._fetch_checkpoint()
        old = self.trusted.size
        proof = (yield from self._consistency(old, cp.size)) if 0 < old < cp.size else []
        return self.trusted.advance(note, proof), note

    def _consistency(self, first: int, second: int) -> Op[list[bytes]]:
        if self.tiles_only:
            source = yield from self._tile_source(second, proof_tiles(second, old_size=first))
            try:
                return list(source.consistency_proof(first))
            except FormatError as exc:
                raise LogAPIError(f"the tiles do not hold the consistency proof {first}..{second}: {exc}") from exc
        return _parsed(
            (yield Request.get("/api/v1/proofs/consistency", **{"from": first, "to": second})), parse_consistency
        )

    def _inclusion(self, index: int, tree_size: int) -> Op[InclusionProof]:
        if self.tiles_only:
            if not 0 <= index < tree_size:
                raise LogAPIError(f"no entry {index} in a tree of size {tree_size}")
            source = yield from self._tile_source(tree_size, proof_tiles(tree_size, index=index))
            leaf = yield from self._tile(0, index // TILE_WIDTH, tile_width(0, index // TILE_WIDTH, tree_size))
            try:
                hashes = tuple(source.inclusion_proof(index))
            except FormatError as exc:
                raise LogAPIError(f"the tiles do not hold the inclusion proof of {index}: {exc}") from exc
            return InclusionProof(index, tree_size, LeafHash(leaf.hashes[index % TILE_WIDTH]), hashes)
        reply = yield Request.get("/api/v1/proofs/inclusion", index=index, treeSize=tree_size)
        return _parsed(reply, parse_inclusion, index, tree_size)

    def _tile_source(self, size: int, addresses: set[TileAddress]) -> Op[TileSource]:
        """The tiles a proof in the tree of ``size`` needs, fetched (each checked only by the proof it makes:
        a wrong hash fails the proof against the signed root)."""
        tiles: dict[tuple[int, int], TileLevels] = {}
        for a in sorted(addresses):
            assert a.level is not None  # proofs need hash tiles, never entry bundles
            tile = yield from self._tile(a.level, a.index, a.width)
            tiles[(a.level, a.index)] = TileLevels(b"".join(tile.hashes))
        return TileSource(size, tiles)

    def _verify_inclusion(self, leaf_hash: LeafHash, index: int, checkpoint: Checkpoint) -> Op[None]:
        proof = yield from self._inclusion(index, checkpoint.size)
        if proof.leaf_hash != leaf_hash:
            raise LogAPIError(f"log serves a different leaf at index {index}")
        proof.verify(checkpoint)

    def _entry(self, request: Request, index: int | None, checkpoint: Checkpoint | None) -> Op[LoggedEntry]:
        reply = yield request
        answer = _json(reply, "entry")
        if index is None:
            index = answer.get("logIndex") if isinstance(answer, dict) else None
            if not isinstance(index, int) or isinstance(index, bool) or index < 0:
                raise LogAPIError(f"{_where(reply)}: the answer names no log index")
        if checkpoint is None:
            checkpoint, _ = yield from self._checkpoint()
        proof = yield from self._inclusion(index, checkpoint.size)
        return verify_entry(answer, index, proof, checkpoint)

    def _submission(self, index: int) -> Op[dict[str, Any] | bytes]:
        reply = yield Request.get(f"/api/v1/entries/{index}")
        submission = _parsed(reply, served_submission)
        if submission is None:
            raise LogAPIError(f"{_where(reply)}: the log's entry {index} has no submission")
        return submission

    def _disclosures(self, index: int, checkpoint: Checkpoint | None) -> Op[Disclosed]:
        logged = yield from self._entry(Request.get(f"/api/v1/entries/{index}"), index, checkpoint)
        reply = _ok((yield Request.get(f"/api/v1/entries/{index}/disclosures")))
        answer = _json(reply, "disclosures")
        try:
            if not isinstance(answer, dict) or answer.get("logIndex") != index:
                raise FormatError(f"the answer is not about entry {index}")
            submission = logged.submission
            envelope = submission.get("dsseEnvelope") if isinstance(submission, dict) else None
            revealed = verify_disclosures(logged.entry.body, envelope, answer.get("disclosures") or [])
        except FormatError as exc:
            raise LogAPIError(f"{_where(reply)}: malformed answer: {exc}", reply.status) from exc
        return Disclosed(logged, revealed)

    def _served_disclosures(self, index: int) -> Op[list[str]]:
        reply = _ok((yield Request.get(f"/api/v1/entries/{index}/disclosures")))
        answer = _json(reply, "disclosures")
        if (
            not isinstance(answer, dict)
            or answer.get("logIndex") != index
            or not isinstance(answer.get("disclosures"), list)
            or not all(isinstance(d, str) for d in answer["disclosures"])
        ):
            raise LogAPIError(f"{_where(reply)}: malformed answer: not entry {index}'s disclosures", reply.status)
        return list(answer["disclosures"])

    def _blinding(self) -> Op[tuple[bytes | None, dict[str, str]]]:
        """The tenant's blinding key, or (for a grant scoped to artifacts) the blinded keys of its artifacts."""
        reply = _ok((yield Request.get("/api/v1/blinding-key")))
        answer = _json(reply, "blinding key")
        try:
            if not isinstance(answer, dict):
                raise FormatError("the answer is not an object")
            hidden = answer.get("hidden") or {}
            if not isinstance(hidden, dict) or not all(isinstance(v, str) for v in hidden.values()):
                raise FormatError("hidden must map artifacts to blinded keys")
            if answer.get("key") is None:
                return None, {artifact_digest(k): v for k, v in hidden.items()}
            key = b64decode(answer["key"], "the blinding key")
            if len(key) != BLINDING_KEY_BYTES:
                raise FormatError(f"a blinding key is {BLINDING_KEY_BYTES} bytes")
        except FormatError as exc:
            raise LogAPIError(f"{_where(reply)}: malformed answer: {exc}", reply.status) from exc
        return key, {}

    def _submissions(self, start: int, count: int) -> Op[Submissions]:
        reply = _ok((yield Request.get("/api/v1/submissions", start=start, count=count)))
        try:
            answer = json_loads(reply.content, "submissions", JSON_LIMITS.enclosing(count))
        except FormatError:
            # One stored submission beyond the limits spoils the whole answer: take each entry's on its own (the
            # log serves one it cannot parse as its bytes), so that entry alone is odd.
            items = []
            for i in range(count):
                items.append((yield from self._submission(start + i)))
            return Submissions(start, tuple(items))
        try:
            return parse_submissions(answer, start, count)
        except FormatError as exc:
            raise LogAPIError(f"{_where(reply)}: malformed answer: {exc}", reply.status) from exc

    def _tile(self, level: int, index: int, width: int) -> Op[Tile]:
        reply = _ok((yield Request.get("/" + tile_path(level, index, width))))
        try:
            return parse_tile(reply.content, level, index, width)
        except FormatError as exc:
            raise LogAPIError(f"{_where(reply)}: malformed tile: {exc}", reply.status) from exc

    def _entry_bundle(self, index: int, width: int) -> Op[EntryBundle]:
        reply = _ok((yield Request.get("/" + bundle_path(index, width))))
        try:
            return EntryBundle.from_bytes(reply.content, index, width)
        except FormatError as exc:
            raise LogAPIError(f"{_where(reply)}: malformed entry bundle: {exc}", reply.status) from exc

    def _history_page(
        self, artifact: str, page_size: int, cache: HistoryCache | None, after: VerifiedHistory | None
    ) -> Op[tuple[VerifiedHistory, bytes]]:
        before = None if after is None else after.next_before
        reply = yield Request.get(_artifact_path(artifact, "history"), limit=page_size, before=before)
        answer = _json(reply, "history")
        history = verify_history(answer, self.verifier, artifact, cache=cache, after=after)
        if history.closure is not None and self._older_commitment(history.closure.commitment_index):
            history = replace(history, superseded=self._newest_commitment)
        return history, str(answer["checkpoint"]).encode()

    def _lineage(self, artifact: str, direction: str, depth: int, complete: bool) -> Op[tuple[VerifiedLineage, bytes]]:
        reply = yield Request.get(
            _artifact_path(artifact, "lineage"), direction=direction, depth=depth, complete="true" if complete else None
        )
        answer = _json(reply, "lineage")
        # About the artifact, in the direction and to the depth asked: the log may not answer another question.
        lineage = verify_lineage(answer, self.verifier, artifact, direction=direction, depth=depth)
        if lineage.closure is not None and self._older_commitment(lineage.closure.commitment_index):
            stale = stale_commitment(lineage.closure.commitment_index, self._newest_commitment or 0)
            lineage = replace(lineage, incomplete=stale)
        return lineage, str(answer["checkpoint"]).encode()

    def _map_status(self) -> Op[tuple[MapStatus, bytes]]:
        answer = _json((yield Request.get("/api/v1/map")), "map")
        status = verify_map_status(answer, self.verifier)
        if status.commitment_index is not None:
            self._older_commitment(status.commitment_index)
        return status, str(answer["checkpoint"]).encode()

    def _older_commitment(self, index: int) -> bool:
        """Whether ``index`` is older than a map commitment an earlier answer showed (else it is the newest now):
        completeness claimed as of a size the log has moved past, which a log could use to hide newer entries."""
        if self._newest_commitment is not None and index < self._newest_commitment:
            return True
        self._newest_commitment = index
        return False

    def _search(self, wanted: SearchFilter, limit: int, before: int | None) -> Op[tuple[VerifiedSearch, bytes]]:
        reply = yield Request.get("/api/v1/search", **wanted.params(), limit=limit, before=before)
        answer = _json(reply, "search")
        found = verify_search(answer, self.verifier, wanted, before)
        return found, str(answer["checkpoint"]).encode()

    def _evidence(self, index: int) -> Op[EntryEvidence]:
        entry = yield from self._entry(Request.get(f"/api/v1/entries/{index}"), index, None)
        return _parsed((yield Request.get(f"/api/v1/entries/{index}/evidence")), parse_evidence, entry)

    def _collateral(self, digest: str) -> Op[Collateral]:
        if len(digest) != 64 or not all(c in "0123456789abcdef" for c in digest):
            raise FormatError("a collateral digest is 64 lowercase hex digits")
        answer = _json((yield Request.get(f"/api/v1/collateral/{digest}")), "collateral")
        if not isinstance(answer, dict) or "collateral" not in answer:
            raise LogAPIError(f"GET /api/v1/collateral/{digest}: the answer holds no collateral")
        return parse_collateral(answer["collateral"], digest)

    def _rim(self, digest: str) -> Op[bytes]:
        return self._by_digest("rims", "rim", "RIM", digest)

    def _ocsp(self, digest: str) -> Op[bytes]:
        return self._by_digest("ocsp", "response", "OCSP response", digest)

    def _by_digest(self, route: str, member: str, what: str, digest: str) -> Op[bytes]:
        """A GPU collateral document the log serves at ``/api/v1/<route>/<digest>``, checked to have it."""
        if len(digest) != 64 or not all(c in "0123456789abcdef" for c in digest):
            raise FormatError(f"a {what} digest is 64 lowercase hex digits")
        answer = _json((yield Request.get(f"/api/v1/{route}/{digest}")), what)
        if not isinstance(answer, dict) or not isinstance(answer.get(member), str):
            raise LogAPIError(f"GET /api/v1/{route}/{digest}: the answer holds no {what}")
        document = b64decode(answer[member], member)
        if hashlib.sha256(document).hexdigest() != digest:
            raise LogAPIError(f"GET /api/v1/{route}/{digest}: the {what} served is not the one of that digest")
        return document

    def _submit(self, submission: dict[str, Any]) -> Op[Receipt]:
        sent = SubmittedEntry.from_submission(submission)
        if not self._key_checked:
            # The pinned key (and witness policy) checked against the log before anything is sent: a key that is
            # not the log's would refuse the receipt of an entry the log had already logged.
            try:
                yield from self._fetch_checkpoint()
            except SignatureError as exc:
                raise SignatureError(f"nothing was submitted: the log's checkpoint does not verify: {exc}") from exc
        # Under a witness policy only a receipt proved against a cosigned checkpoint can be accepted.
        request = Request.post_json("/api/v1/entries", submission, wait="witnessed" if self.quorum else None)
        reply = yield request
        try:
            receipt = Receipt.from_json(_json(reply, "receipt"))
        except FormatError as exc:
            raise LogAPIError(f"{_where(reply)}: malformed receipt: {exc}", reply.status) from exc
        verify_receipt(receipt, self.verifier, witnesses=self.witnesses, quorum=self.quorum)
        verify_receipt_for(receipt, sent, new_leaf=reply.status == 201)
        return replace(receipt, created=reply.status == 201)

    def _prove_consistent(self, note: bytes) -> Op[Checkpoint]:
        cp = self._open(note)
        if (cp.size, cp.root_hash) not in self._consistent:
            span = self._join_span(cp)
            self._join(note, cp, (yield from self._consistency(*span)) if span else [])
        return cp

    def _verify_receipt_current(self, receipt: Receipt) -> Op[Checkpoint]:
        cp = verify_receipt(receipt, self.verifier)
        latest, note = yield from self._checkpoint()
        proof = (yield from self._consistency(cp.size, latest.size)) if latest.size > cp.size else []
        verify_advance(self.verifier, receipt.checkpoint, note, proof)
        return latest


class LogClient(_Core):
    """Synchronous client of one log.

    ``http`` is the log's URL (the client then owns its connection pool: use it as a context manager or call
    :meth:`close`), or an ``httpx.Client`` carrying the log's ``base_url`` (or give ``url``). ``verifier`` pins
    the log's key; without one (None) only answers that carry no signed checkpoint can be read.

    Under a witness policy (``witnesses``, and ``quorum`` of them: all unless given) every checkpoint accepted
    must carry ``quorum`` cosignatures from ``witnesses`` dated inside ``cosignature_window``. Requests are
    retried under ``retry`` (:mod:`atlas_log.transport`); ``timeout_s`` bounds each attempt of a client made
    from a URL.

    With ``tiles_only`` every inclusion and consistency proof is computed here from the static tiles
    (``/tile/...``) and checked against the signed ``/checkpoint``: the URL may be a CDN or a mirror serving
    nothing else (``atlas-log-server export-tiles``). Receipts, :meth:`checkpoint` with its trusted state and
    :meth:`verify_inclusion` work there; answers only the log's API gives (entries, histories) are not asked.
    """

    def __init__(
        self,
        http: httpx.Client | str,
        verifier: Verifier | str | None,
        *,
        state_file: Path | None = None,
        witnesses: Sequence[CosignatureVerifier] = (),
        quorum: int | None = None,
        cosignature_window: CosignatureWindow = DEFAULT_WINDOW,
        retry: RetryPolicy = DEFAULT_RETRY,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        url: str | None = None,
        token: str | None = None,
        tiles_only: bool = False,
    ) -> None:
        super().__init__(verifier, state_file, witnesses, quorum, cosignature_window, tiles_only)
        self._owned = isinstance(http, str)
        # ``token``: a tenant's bearer token, or a grant to read confidential disclosures (URL-made clients).
        headers = {"Authorization": f"Bearer {token}"} if token else None
        self.http = httpx.Client(base_url=http, timeout=timeout_s, headers=headers) if isinstance(http, str) else http
        self.url = url
        self.retry = retry

    def close(self) -> None:
        """Close the connection pool if this client made it."""
        if self._owned:
            self.http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def _run(self, op: Op[T]) -> T:
        try:
            request = next(op)
            while True:
                try:
                    reply = send(self.http, request, self.retry, self.url)
                except Error as exc:
                    request = op.throw(exc)
                else:
                    request = op.send(reply)
        except StopIteration as done:
            result: T = done.value
            return result

    def log_info(self) -> LogInfo:
        """What the log announces about itself (``/api/v1/log``); unsigned, see :class:`~atlas_log.answers.LogInfo`."""
        return self._run(self._log_info())

    def fetch_checkpoint(self) -> tuple[Checkpoint, bytes]:
        """The latest checkpoint, signed by the log and witnessed under the policy; the trusted state is not
        consulted (:meth:`checkpoint` proves consistency with it)."""
        return self._run(self._fetch_checkpoint())

    def checkpoint(self) -> tuple[Checkpoint, bytes]:
        """Fetch the latest checkpoint, verify its signature, and prove it extends the trusted state."""
        return self._run(self._checkpoint())

    def inclusion_proof(self, index: int, tree_size: int) -> InclusionProof:
        return self._run(self._inclusion(index, tree_size))

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        return self._run(self._consistency(first, second))

    def verify_inclusion(self, leaf_hash: LeafHash, index: int, checkpoint: Checkpoint) -> None:
        """Fetch and verify the inclusion proof of ``leaf_hash`` at ``index`` against ``checkpoint``."""
        self._run(self._verify_inclusion(leaf_hash, index, checkpoint))

    def entry(self, index: int, checkpoint: Checkpoint | None = None) -> LoggedEntry:
        """The entry at ``index``, proved included in ``checkpoint`` (default: the latest, trusted)."""
        return self._run(self._entry(Request.get(f"/api/v1/entries/{index}"), index, checkpoint))

    def entry_by_leaf_hash(self, leaf_hash: bytes, checkpoint: Checkpoint | None = None) -> LoggedEntry:
        """The entry whose leaf hashes to ``leaf_hash``, proved included (as :meth:`entry`)."""
        return self._run(self._entry(Request.get("/api/v1/entries", leafHash=leaf_hash.hex()), None, checkpoint))

    def submission(self, index: int) -> dict[str, Any] | bytes:
        """The submission entry ``index`` was admitted from, as served (not proved: compare it with the leaf)."""
        return self._run(self._submission(index))

    def disclosures(self, index: int, checkpoint: Checkpoint | None = None) -> Disclosed:
        """A confidential entry's hidden values, for a reader the log grants them to (the HTTP client's
        ``Authorization``: the tenant's token or a grant): the entry proved included, its statement proved
        to be the one the leaf commits to, and each disclosure proved to be a value it hides."""
        return self._run(self._disclosures(index, checkpoint))

    def served_disclosures(self, index: int) -> list[str]:
        """The disclosures the log serves for entry ``index`` to this client's token, as served: check them
        against the proved entry with :func:`~atlas_log.disclosure.verify_disclosures` (:meth:`disclosures`
        does both). Raises :class:`~atlas_log.errors.LogProblemError` (403 ``not-granted``, 404
        ``no-disclosures``, 410 ``disclosures-erased``)."""
        return self._run(self._served_disclosures(index))

    def blinding_key(self) -> bytes:
        """The tenant's blinding key, for its own token or a whole-tenant grant to read its disclosures: it
        keys the blinded digests that stand for hidden ones (:func:`~atlas_log.disclosure.blind`), so the
        holder can redact digests (``redact(..., blinding_key=)``) and look hidden artifacts up by their real
        digest (:meth:`hidden`)."""
        key, _ = self._run(self._blinding())
        if key is None:
            raise LogAPIError("this grant is scoped to artifacts: it gets their blinded keys (hidden()), not the key")
        return key

    def hidden(self, artifact: str, key: bytes | None = None) -> str:
        """The index key (``blinded+<alg>:<hex>``) under which entries hiding ``artifact`` (``alg:hex``) are
        found; its history and lineage come with the same proofs as any artifact's. Computed here under
        ``key`` or the tenant's blinding key; a grant scoped to artifacts is told its artifacts' keys by the
        log, and takes its word for them (each entry found reveals, with :meth:`disclosures`, the digest it
        hides)."""
        if key is None:
            key, told = self._run(self._blinding())
            if key is None:
                if artifact_digest(artifact) not in told:
                    raise LogAPIError(f"{artifact} is not one of the artifacts this grant covers")
                return told[artifact_digest(artifact)]
        return blinded_artifact(key, artifact)

    def submissions(self, start: int, count: int) -> Submissions:
        """The submissions of entries ``start`` .. ``start + count - 1`` (at most 256), as served."""
        return self._run(self._submissions(start, count))

    def tile(self, level: int, index: int, width: int = TILE_WIDTH) -> Tile:
        return self._run(self._tile(level, index, width))

    def entry_bundle(self, index: int, width: int = TILE_WIDTH) -> EntryBundle:
        return self._run(self._entry_bundle(index, width))

    def history_pages(
        self, artifact: str, *, page_size: int = DEFAULT_HISTORY_PAGE, cache: HistoryCache | None = None
    ) -> Iterator[VerifiedHistory]:
        """``artifact``'s history (``alg:hex``) page by page, newest first: each value holds every page so far,
        verified about that artifact and chained to the previous page by back-links
        (:func:`~atlas_log.history.verify_history`); each page's checkpoint is witnessed under the policy and
        proved consistent with the trusted state, hence with every other page's."""
        name, after = artifact_digest(artifact), None
        while after is None or after.next_before is not None:
            page, note = self._run(self._history_page(name, page_size, cache, after))
            self.prove_consistent(note)
            yield page
            after = page

    def history(
        self,
        artifact: str,
        *,
        page_size: int = DEFAULT_HISTORY_PAGE,
        cache: HistoryCache | None = None,
        progress: Callable[[VerifiedHistory], None] | None = None,
    ) -> VerifiedHistory:
        """Every page of :meth:`history_pages`; the result says what was proved (``gap_free_from``)."""
        history: VerifiedHistory | None = None
        for history in self.history_pages(artifact, page_size=page_size, cache=cache):
            if progress is not None:
                progress(history)
        assert history is not None
        return history

    def lineage(
        self, artifact: str, direction: str = "up", depth: int = 5, *, complete: bool = True
    ) -> VerifiedLineage:
        """``artifact``'s lineage (:func:`~atlas_log.history.verify_lineage`), its checkpoint proved consistent;
        with ``complete`` (the default) the log is asked for the proofs that every edge up to ``depth`` is there
        (the result's ``complete``)."""
        lineage, note = self._run(self._lineage(artifact_digest(artifact), direction, depth, complete))
        self.prove_consistent(note)
        return lineage

    def search(self, wanted: SearchFilter, *, limit: int = 100, before: int | None = None) -> VerifiedSearch:
        """One page of entries matching ``wanted`` (:func:`~atlas_log.answers.verify_search`), older than
        ``before``; its checkpoint proved consistent."""
        found, note = self._run(self._search(wanted, limit, before))
        self.prove_consistent(note)
        return found

    def map_status(self) -> MapStatus:
        """The log's newest map commitment (:func:`~atlas_log.history.verify_map_status`), its checkpoint proved
        consistent."""
        status, note = self._run(self._map_status())
        self.prove_consistent(note)
        return status

    def evidence(self, index: int) -> EntryEvidence:
        """Entry ``index``'s quote and collateral, proved to be the ones its included leaf records."""
        return self._run(self._evidence(index))

    def collateral(self, digest: str) -> Collateral:
        """The collateral set with ``digest`` (as entries record it), checked to have that digest."""
        return self._run(self._collateral(digest))

    def rim(self, digest: str) -> bytes:
        """The GPU RIM document with SHA-256 ``digest`` (as composite entries record it), checked to have it."""
        return self._run(self._rim(digest))

    def ocsp(self, digest: str) -> bytes:
        """The OCSP response (DER) with SHA-256 ``digest`` (as composite entries record it), checked to have it."""
        return self._run(self._ocsp(digest))

    def submit(self, submission: dict[str, Any]) -> Receipt:
        """POST an entry and return its receipt once it is proved to be for this submission.

        The receipt must verify under the log's key and the witness policy, its leaf must be the entry built
        from ``submission`` (:func:`~atlas_log.receipt.verify_receipt_for`), and its checkpoint must be
        consistent with the trusted state (which it advances). The same bytes are resent while the log is
        unreachable or busy (it deduplicates). Raises :class:`~atlas_log.errors.Error`.
        """
        receipt = self._run(self._submit(submission))
        self.prove_consistent(receipt.checkpoint)
        return receipt

    def prove_consistent(self, note: bytes) -> Checkpoint:
        """Prove a signed checkpoint (one a receipt or an answer was proved against) consistent with the trusted
        state: a newer one advances it, an older one must be a prefix of it. Under a witness policy it must be
        witnessed first (:class:`~atlas_log.errors.SignatureError`). Raises
        :class:`~atlas_log.errors.InconsistentLogError` with both notes and the proof."""
        return self._run(self._prove_consistent(note))

    def verify_receipt_current(self, receipt: Receipt) -> Checkpoint:
        """Verify a receipt, then prove its checkpoint is consistent with the log's latest (trusted, and under a
        witness policy witnessed) one: this upgrades a receipt to a witnessed checkpoint.

        A latest checkpoint of the receipt's size must have the same root, a larger one is joined by a consistency
        proof, a smaller one is a rollback: each failure raises :class:`~atlas_log.errors.InconsistentLogError`
        carrying the receipt's checkpoint and the latest one as evidence.
        """
        return self._run(self._verify_receipt_current(receipt))


class AsyncLogClient(_Core):
    """The asynchronous twin of :class:`LogClient` (same operations, same arguments), over an
    ``httpx.AsyncClient`` or a URL. Operations that move the trusted state run one at a time."""

    def __init__(
        self,
        http: httpx.AsyncClient | str,
        verifier: Verifier | str | None,
        *,
        state_file: Path | None = None,
        witnesses: Sequence[CosignatureVerifier] = (),
        quorum: int | None = None,
        cosignature_window: CosignatureWindow = DEFAULT_WINDOW,
        retry: RetryPolicy = DEFAULT_RETRY,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        url: str | None = None,
        token: str | None = None,
        tiles_only: bool = False,
    ) -> None:
        super().__init__(verifier, state_file, witnesses, quorum, cosignature_window, tiles_only)
        self._owned = isinstance(http, str)
        headers = {"Authorization": f"Bearer {token}"} if token else None
        self.http = (
            httpx.AsyncClient(base_url=http, timeout=timeout_s, headers=headers) if isinstance(http, str) else http
        )
        self.url = url
        self.retry = retry
        # A consistency proof is only valid for the trusted size it was asked from: joins must not interleave.
        self._join_lock = asyncio.Lock()

    async def aclose(self) -> None:
        if self._owned:
            await self.http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        await self.aclose()

    async def _run(self, op: Op[T]) -> T:
        try:
            request = next(op)
            while True:
                try:
                    reply = await asend(self.http, request, self.retry, self.url)
                except Error as exc:
                    request = op.throw(exc)
                else:
                    request = op.send(reply)
        except StopIteration as done:
            result: T = done.value
            return result

    async def _joined(self, op: Op[T]) -> T:
        async with self._join_lock:
            return await self._run(op)

    async def log_info(self) -> LogInfo:
        return await self._run(self._log_info())

    async def fetch_checkpoint(self) -> tuple[Checkpoint, bytes]:
        return await self._run(self._fetch_checkpoint())

    async def checkpoint(self) -> tuple[Checkpoint, bytes]:
        return await self._joined(self._checkpoint())

    async def inclusion_proof(self, index: int, tree_size: int) -> InclusionProof:
        return await self._run(self._inclusion(index, tree_size))

    async def consistency_proof(self, first: int, second: int) -> list[bytes]:
        return await self._run(self._consistency(first, second))

    async def verify_inclusion(self, leaf_hash: LeafHash, index: int, checkpoint: Checkpoint) -> None:
        await self._run(self._verify_inclusion(leaf_hash, index, checkpoint))

    async def entry(self, index: int, checkpoint: Checkpoint | None = None) -> LoggedEntry:
        op = self._entry(Request.get(f"/api/v1/entries/{index}"), index, checkpoint)
        return await (self._joined(op) if checkpoint is None else self._run(op))

    async def entry_by_leaf_hash(self, leaf_hash: bytes, checkpoint: Checkpoint | None = None) -> LoggedEntry:
        op = self._entry(Request.get("/api/v1/entries", leafHash=leaf_hash.hex()), None, checkpoint)
        return await (self._joined(op) if checkpoint is None else self._run(op))

    async def disclosures(self, index: int, checkpoint: Checkpoint | None = None) -> Disclosed:
        return await self._run(self._disclosures(index, checkpoint))

    async def submission(self, index: int) -> dict[str, Any] | bytes:
        return await self._run(self._submission(index))

    async def submissions(self, start: int, count: int) -> Submissions:
        return await self._run(self._submissions(start, count))

    async def tile(self, level: int, index: int, width: int = TILE_WIDTH) -> Tile:
        return await self._run(self._tile(level, index, width))

    async def entry_bundle(self, index: int, width: int = TILE_WIDTH) -> EntryBundle:
        return await self._run(self._entry_bundle(index, width))

    async def history_pages(
        self, artifact: str, *, page_size: int = DEFAULT_HISTORY_PAGE, cache: HistoryCache | None = None
    ) -> AsyncIterator[VerifiedHistory]:
        name, after = artifact_digest(artifact), None
        while after is None or after.next_before is not None:
            page, note = await self._run(self._history_page(name, page_size, cache, after))
            await self.prove_consistent(note)
            yield page
            after = page

    async def history(
        self,
        artifact: str,
        *,
        page_size: int = DEFAULT_HISTORY_PAGE,
        cache: HistoryCache | None = None,
        progress: Callable[[VerifiedHistory], None] | None = None,
    ) -> VerifiedHistory:
        history: VerifiedHistory | None = None
        async for history in self.history_pages(artifact, page_size=page_size, cache=cache):
            if progress is not None:
                progress(history)
        assert history is not None
        return history

    async def lineage(
        self, artifact: str, direction: str = "up", depth: int = 5, *, complete: bool = True
    ) -> VerifiedLineage:
        lineage, note = await self._run(self._lineage(artifact_digest(artifact), direction, depth, complete))
        await self.prove_consistent(note)
        return lineage

    async def search(self, wanted: SearchFilter, *, limit: int = 100, before: int | None = None) -> VerifiedSearch:
        found, note = await self._run(self._search(wanted, limit, before))
        await self.prove_consistent(note)
        return found

    async def map_status(self) -> MapStatus:
        status, note = await self._run(self._map_status())
        await self.prove_consistent(note)
        return status

    async def evidence(self, index: int) -> EntryEvidence:
        return await self._joined(self._evidence(index))

    async def collateral(self, digest: str) -> Collateral:
        return await self._run(self._collateral(digest))

    async def rim(self, digest: str) -> bytes:
        return await self._run(self._rim(digest))

    async def ocsp(self, digest: str) -> bytes:
        return await self._run(self._ocsp(digest))

    async def submit(self, submission: dict[str, Any]) -> Receipt:
        """See :meth:`LogClient.submit`."""
        receipt = await self._run(self._submit(submission))
        await self.prove_consistent(receipt.checkpoint)
        return receipt

    async def prove_consistent(self, note: bytes) -> Checkpoint:
        """See :meth:`LogClient.prove_consistent`."""
        return await self._joined(self._prove_consistent(note))

    async def verify_receipt_current(self, receipt: Receipt) -> Checkpoint:
        """See :meth:`LogClient.verify_receipt_current`."""
        return await self._joined(self._verify_receipt_current(receipt))
