"""The monitor: follow a log from one or more vantage points, verify every checkpoint and the consistency
between them (and the witness quorum), and produce evidence when the log rolls back or forks.

Each round: fetch ``/checkpoint`` from every log URL and peer monitor; verify each (log signature, quorum);
advance the trusted state through a consistency proof; then cross-check every view against the trusted one:
two views of one size must have one root, and a smaller view must be provably a prefix of the larger
(proof fetched from the logs). Anything else is a problem, and is written out as evidence only when the
evidence holds under the pinned key (see :mod:`atlas_log.evidence`): a fork between trees of different
sizes needs the larger tree's own proof, which a log may refuse to give.

A log that keeps a verifiable map must keep committing it: once the monitor has seen a map commitment, each
round asks the log for its newest one (proved included) and reports a problem when the oldest entry the map does
not cover has waited longer than ``map_max_lag_s``, or when the log names no commitment any more. Whether each
committed root is right is the replay's check (:mod:`atlas_log.replay`); this one needs only checkpoints and a
few entries.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

from atlas_log.checkpoint import open_checkpoint
from atlas_log.client import LogClient
from atlas_log.cosignature import DEFAULT_WINDOW, CosignatureVerifier, CosignatureWindow
from atlas_log.errors import Error, InconsistentLogError
from atlas_log.evidence import inconsistency_evidence, verify_evidence
from atlas_log.merkle import verify_consistency
from atlas_log.note import Verifier
from atlas_log.transport import RetryPolicy
from atlas_log.trusted_state import TrustedState
from atlas_log.vmap import MapCommitment

if TYPE_CHECKING:
    import httpx

__all__ = ["DEFAULT_MAP_MAX_LAG_S", "MONITOR_RETRY", "Monitor", "RoundResult", "serve_checkpoint"]

# A round asks every vantage point in turn: one that stays down is a problem of this round, not a stall.
MONITOR_RETRY = RetryPolicy(deadline_s=10.0)
MONITOR_TIMEOUT_S = 10.0
DEFAULT_MAP_MAX_LAG_S = 300
_MAP_LOOKAHEAD = 8  # entries read past the committed size to find the first one the map must cover


@dataclass
class RoundResult:
    size: int = 0
    views: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    evidence: list[dict[str, Any]] = field(default_factory=list)


class Monitor:
    """Watches the logs at ``logs`` (and peer monitors at ``peers``), each read through a
    :class:`~atlas_log.client.LogClient`: over ``http`` when given (an ``httpx.Client`` without a base URL), else
    over a connection pool of its own per URL (close them with :meth:`close`)."""

    def __init__(
        self,
        http: httpx.Client | None,
        logs: Sequence[str],
        verifier: Verifier,
        *,
        peers: Sequence[str] = (),
        witnesses: Sequence[CosignatureVerifier] = (),
        quorum: int | None = None,
        state_file: Path | None = None,
        cosignature_window: CosignatureWindow = DEFAULT_WINDOW,
        retry: RetryPolicy = MONITOR_RETRY,
        map_max_lag_s: int | None = DEFAULT_MAP_MAX_LAG_S,
    ) -> None:
        self.logs = [u.rstrip("/") for u in logs]
        self.map_max_lag_s = map_max_lag_s
        self.map_seen: int | None = None  # the newest map commitment seen (its index), once one was
        self.peers = [u.rstrip("/") for u in peers]
        self.verifier = verifier
        self.trusted = TrustedState(verifier, state_file)
        self.clients = {
            url: LogClient(
                url if http is None else http,
                verifier,
                witnesses=witnesses,
                quorum=quorum,
                cosignature_window=cosignature_window,
                retry=retry,
                timeout_s=MONITOR_TIMEOUT_S,
                url=None if http is None else url,
            )
            for url in dict.fromkeys(self.logs + self.peers)
        }

    def close(self) -> None:
        for client in self.clients.values():
            client.close()

    def _proof(self, url: str, first: int, second: int) -> list[bytes]:
        """A consistency proof from the log at ``url`` (a peer monitor's view is proved by the first log)."""
        return self.clients[url if url in self.logs else self.logs[0]].consistency_proof(first, second)

    def round(self, now: int | None = None) -> RoundResult:
        """One round over every vantage point; ``now`` (Unix seconds, default this machine's clock) dates the
        map's lag."""
        result = RoundResult()
        views: dict[str, bytes] = {}
        for url in self.logs + self.peers:
            try:
                # Signed by the log and, under the witness policy, cosigned by a quorum.
                _, views[url] = self.clients[url].fetch_checkpoint()
            except Error as exc:
                result.problems.append(f"{url}: {exc}")
        for url, note in sorted(views.items(), key=lambda kv: open_checkpoint(kv[1], self.verifier).size):
            cp = open_checkpoint(note, self.verifier)
            result.views[url] = cp.size
            old = self.trusted.size
            try:
                proof = self._proof(url, old, cp.size) if 0 < old < cp.size else []
                self.trusted.advance(note, proof)
            except InconsistentLogError as exc:
                kind = exc.kind if exc.kind in ("rollback", "fork") else "inconsistent"
                if kind == "rollback":
                    # A smaller view may simply lag; it is evidence only if it is not a prefix of what we trust.
                    if self._is_prefix(url, note, self.trusted.note or b""):
                        continue
                    kind = "fork"
                result.problems.append(f"{url}: {exc}")
                evidence = self._evidence(url, exc, kind)
                if evidence is None:
                    result.problems.append(f"{url}: no log served a proof that shows the fork; no evidence written")
                else:
                    result.evidence.append(evidence)
            except Error as exc:
                result.problems.append(f"{url}: {exc}")
        result.size = self.trusted.size
        if self.map_max_lag_s is not None:
            problem = self._map_lag(self.logs[0], int(time.time()) if now is None else now)
            if problem is not None:
                result.problems.append(f"{self.logs[0]}: {problem}")
        return result

    def _map_lag(self, url: str, now: int) -> str | None:
        """Why the log at ``url`` is not keeping its map committed, or None. A log that never committed a map
        keeps none, and is not asked to."""
        client = self.clients[url]
        try:
            status = client.map_status()
        except Error as exc:
            return f"cannot read the map's newest commitment: {exc}" if self.map_seen is not None else None
        if status.commitment is None or status.commitment_index is None:
            if self.map_seen is None:
                return None
            return f"the log names no map commitment any more (it committed its map at entry {self.map_seen})"
        if self.map_seen is not None and status.commitment_index < self.map_seen:
            return f"the log's newest map commitment went back from entry {self.map_seen} to {status.commitment_index}"
        self.map_seen = status.commitment_index
        covered, size = status.commitment.tree_size, status.checkpoint.size
        for index in range(covered, min(size, covered + _MAP_LOOKAHEAD)):
            if index == status.commitment_index:
                continue
            try:
                logged = client.entry(index, status.checkpoint)
            except Error as exc:
                return f"cannot read entry {index}, which the map does not cover yet: {exc}"
            if MapCommitment.is_commitment(logged.entry.body):
                continue
            waited = now - logged.entry.integrated_time
            if waited > (self.map_max_lag_s or 0):
                return (
                    f"the log has stopped committing its map: its newest commitment (entry {status.commitment_index}) "
                    f"covers {covered} of {size} entries, and entry {index} has waited {waited} s for the map "
                    f"(limit {self.map_max_lag_s} s)"
                )
            return None
        return None

    def _evidence(self, url: str, err: InconsistentLogError, kind: str) -> dict[str, Any] | None:
        """Evidence of ``err`` that holds under the pinned key, or None when no log's proofs show it.

        Trees of different sizes need the larger tree's own proof that its first leaves have another root:
        asked of the log that served the view, then of every other log URL (a peer's view, or the smaller
        side of a fork, has no such proof to give).
        """
        a, b = (open_checkpoint(n, self.verifier) for n in (err.old_checkpoint, err.new_checkpoint))
        small, large = min(a.size, b.size), max(a.size, b.size)
        attempts: list[tuple[list[bytes], list[bytes]]] = [([], [])]  # enough for one size, or a frozen log
        if 0 < small < large:
            for base in dict.fromkeys([url, *self.logs]):
                if base not in self.logs:
                    continue
                try:
                    proof = self._proof(base, small, large)
                    path = self._path(base, small, large) if small & (small - 1) == 0 else []
                except Error:
                    continue
                attempts.append((proof, path))
        for proof, path in attempts:
            evidence = inconsistency_evidence(
                self.verifier, err.old_checkpoint, err.new_checkpoint, proof, err.reason, kind, path
            )
            try:
                verify_evidence(evidence, self.verifier)
            except Error:
                continue
            return evidence.to_json()
        return None

    def _path(self, base: str, index: int, size: int) -> list[bytes]:
        return list(self.clients[base].inclusion_proof(index, size).hashes)

    def _is_prefix(self, url: str, small: bytes, large: bytes) -> bool:
        """Whether any log proves ``small`` a prefix of ``large``: a lagging mirror cannot prove up to a size
        it does not have yet, so the other log URLs are asked too."""
        a, b = open_checkpoint(small, self.verifier), open_checkpoint(large, self.verifier)
        if a.size == 0:
            return True
        for base in dict.fromkeys([url if url in self.logs else self.logs[0], *self.logs]):
            try:
                verify_consistency(a.size, b.size, self._proof(base, a.size, b.size), a.root_hash, b.root_hash)
            except Error:
                continue
            return True
        return False


def serve_checkpoint(monitor: Monitor, host: str, port: int) -> ThreadingHTTPServer:
    """Serve the monitor's latest verified checkpoint at ``/checkpoint`` (for peer monitors), from a thread."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            note = monitor.trusted.note
            if self.path != "/checkpoint" or note is None:
                self.send_response(404)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(note)))
            self.end_headers()
            self.wfile.write(note)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="monitor-checkpoint", daemon=True).start()
    return server
