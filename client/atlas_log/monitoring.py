"""The monitor: follow a log from one or more vantage points, verify every checkpoint and the consistency
between them (and the witness quorum), and produce evidence when the log rolls back or forks.

Each round: fetch ``/checkpoint`` from every log URL and peer monitor; verify each (log signature, quorum);
advance the trusted state through a consistency proof; then cross-check every view against the trusted one:
two views of one size must have one root, and a smaller view must be provably a prefix of the larger
(proof fetched from the log). Anything else is written out as evidence (see :mod:`atlas_log.evidence`).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from atlas_log._encoding import ANSWER_LIMITS, b64decode, json_loads
from atlas_log.checkpoint import open_checkpoint
from atlas_log.cosignature import CosignatureVerifier, verify_cosignatures
from atlas_log.errors import Error, InconsistentLogError, ProofError
from atlas_log.evidence import evidence_from_error
from atlas_log.merkle import verify_consistency
from atlas_log.monitor import TrustedState
from atlas_log.note import Verifier, parse_note

__all__ = ["Monitor", "RoundResult", "serve_checkpoint"]


@dataclass
class RoundResult:
    size: int = 0
    views: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    evidence: list[dict[str, Any]] = field(default_factory=list)


class Monitor:
    def __init__(
        self,
        http: httpx.Client,
        logs: Sequence[str],
        verifier: Verifier,
        *,
        peers: Sequence[str] = (),
        witnesses: Sequence[CosignatureVerifier] = (),
        quorum: int = 0,
        state_file: Path | None = None,
    ) -> None:
        self.http = http
        self.logs = [u.rstrip("/") for u in logs]
        self.peers = [u.rstrip("/") for u in peers]
        self.verifier = verifier
        self.witnesses = tuple(witnesses)
        self.quorum = quorum
        self.trusted = TrustedState(verifier, state_file)

    def _get(self, url: str) -> bytes:
        resp = self.http.get(url, timeout=10)
        if resp.status_code != 200:
            raise Error(f"GET {url}: {resp.status_code}")
        return resp.content

    def _proof(self, url: str, first: int, second: int) -> list[bytes]:
        """A consistency proof from the log at ``url`` (a peer monitor's view is proved by the first log)."""
        base = url if url in self.logs else self.logs[0]
        resp = self.http.get(f"{base}/api/v1/proofs/consistency", params={"from": first, "to": second}, timeout=10)
        if resp.status_code != 200:
            raise Error(f"the log refused a consistency proof {first} -> {second}: {resp.status_code}")
        answer: Any = json_loads(resp.content, "consistency proof", ANSWER_LIMITS)
        return [b64decode(h, "proof") for h in answer["hashes"]]

    def round(self) -> RoundResult:
        result = RoundResult()
        views: dict[str, bytes] = {}
        for url in self.logs + self.peers:
            try:
                note = self._get(f"{url}/checkpoint")
                open_checkpoint(note, self.verifier)
                if self.quorum:
                    verify_cosignatures(parse_note(note), self.witnesses, self.quorum)
                views[url] = note
            except (Error, httpx.HTTPError) as exc:
                result.problems.append(f"{url}: {exc}")
        for url, note in sorted(views.items(), key=lambda kv: open_checkpoint(kv[1], self.verifier).size):
            cp = open_checkpoint(note, self.verifier)
            result.views[url] = cp.size
            old = self.trusted.size
            try:
                proof = self._proof(url, old, cp.size) if 0 < old < cp.size else []
                self.trusted.advance(note, proof)
            except InconsistentLogError as exc:
                kind = "rollback" if "rollback" in exc.reason else "fork" if "roots" in exc.reason else "inconsistent"
                if kind == "rollback":
                    # A smaller view may simply lag; it is evidence only if it is not a prefix of what we trust.
                    if self._is_prefix(url, note, self.trusted.note or b""):
                        continue
                    kind = "fork"
                result.problems.append(f"{url}: {exc}")
                result.evidence.append(evidence_from_error(exc, self.verifier, kind))
            except Error as exc:
                result.problems.append(f"{url}: {exc}")
        result.size = self.trusted.size
        return result

    def _is_prefix(self, url: str, small: bytes, large: bytes) -> bool:
        a, b = open_checkpoint(small, self.verifier), open_checkpoint(large, self.verifier)
        if a.size == 0:
            return True
        try:
            verify_consistency(a.size, b.size, self._proof(url, a.size, b.size), a.root_hash, b.root_hash)
        except (ProofError, Error):
            return False
        return True


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
