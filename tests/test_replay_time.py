"""The monitor's replay checks time: ``integratedTime`` does not step back along the log beyond the stated
tolerance, is not in the future of the checkpoint that covers it, and a quote is re-verified only at a time
its collateral was current. The log here is hostile: a real HTTP server holding the log's key, serving
leaves built with the log's own entry builder but with the times it chooses."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from atlas_log import cli
from atlas_log.checkpoint import Checkpoint, sign_checkpoint
from atlas_log.merkle import RootHash, leaf_hash
from atlas_log.replay import TIME_TOLERANCE_S
from atlas_log.tdx.collateral import COLLATERAL_PARTS
from atlas_log.testing.demo import demo_submission
from tests import reference
from tests.test_evidence import COLLATERAL, DAY, LOG, NOW, PLATFORM, SUBMITTER, VKEY, _leaf


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class HostileLog:
    """Serves what ``atlas-log monitor --replay`` reads, for leaves whose times the log chose."""

    def __init__(self, times: list[int], verified_at: int = NOW - DAY) -> None:
        self.subs = [demo_submission(SUBMITTER, i, PLATFORM) for i in range(len(times))]
        self.leaves = [_leaf(s, t, verified_at) for s, t in zip(self.subs, times, strict=True)]
        self.hashes = [leaf_hash(leaf) for leaf in self.leaves]
        note = sign_checkpoint(Checkpoint(LOG.name, len(self.hashes), RootHash(reference.mth(self.hashes))), LOG)
        coll = {"collateral": {p: _b64(getattr(COLLATERAL, p)) for p in COLLATERAL_PARTS}}
        log = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlparse(self.path)
                q = {k: int(v[0]) for k, v in parse_qs(url.query).items()}
                body: Any
                if url.path == "/checkpoint":
                    body = note
                elif url.path.startswith("/tile/entries/000"):
                    body = b"".join(len(leaf).to_bytes(2, "big") + leaf for leaf in log.leaves)
                elif url.path == "/api/v1/submissions":
                    body = {"start": q["start"], "submissions": log.subs[q["start"] : q["start"] + q["count"]]}
                elif url.path == f"/api/v1/collateral/{COLLATERAL.digest}":
                    body = coll
                elif url.path == "/api/v1/proofs/inclusion":
                    path = reference.path(q["index"], log.hashes[: q["treeSize"]])
                    body = {"leafHash": _b64(log.hashes[q["index"]]), "hashes": [_b64(h) for h in path]}
                elif url.path.startswith("/api/v1/entries/"):
                    i = int(url.path.rsplit("/", 1)[1])
                    body = {"logIndex": i, "leaf": _b64(log.leaves[i]), "submission": log.subs[i]}
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def hostile() -> Iterator[list[HostileLog]]:
    logs: list[HostileLog] = []
    yield logs
    for log in logs:
        log.server.shutdown()
        log.server.server_close()


def _monitor(
    log: HostileLog, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[int, dict[str, Any], list[dict[str, Any]]]:
    out = tmp_path / "evidence"
    rc = cli.main(
        [
            "--json",
            "monitor",
            "--log",
            log.url,
            "--vkey",
            VKEY,
            "--replay",
            "--replay-workers",
            "1",
            "--tdx-root",
            PLATFORM.root_fingerprint,
            "--once",
            "--evidence-dir",
            str(out),
        ]
    )
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    files = sorted(out.glob("*.json")) if out.exists() else []
    evidence = [json.loads(f.read_text()) for f in files]
    for f in files:  # every piece of evidence the monitor writes holds for anyone pinning the log's key
        assert cli.main(["--vkey", VKEY, "verify-evidence", str(f), "--tdx-root", PLATFORM.root_fingerprint]) == 0
        assert "evidence does not hold" not in capsys.readouterr().out
    return rc, report, evidence


def test_times_within_the_tolerance_are_no_problem(
    hostile: list[HostileLog], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    start = NOW - DAY
    log = HostileLog([start, start + 5, start + 5 - TIME_TOLERANCE_S, start + 7])
    hostile.append(log)
    rc, report, evidence = _monitor(log, tmp_path, capsys)
    assert (rc, report["problems"], evidence) == (0, [], [])


def test_an_entry_backdated_past_its_predecessors_is_evidence(
    hostile: list[HostileLog], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    start = NOW - DAY
    log = HostileLog([start, start + 10, start + 9 - TIME_TOLERANCE_S, start + 20])
    hostile.append(log)
    rc, report, evidence = _monitor(log, tmp_path, capsys)
    assert rc == 3, report
    assert any("entry 2" in p and "before entry 1" in p for p in report["problems"]), report
    (ev,) = evidence
    assert ev["kind"] == "backdated" and [e["logIndex"] for e in ev["entries"]] == [1, 2]


def test_an_entry_dated_before_its_collateral_was_issued_is_evidence(
    hostile: list[HostileLog], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The log verified the quote now, but dated the entry 15 days ago, when its collateral (issued 10 days
    ago) did not exist: the quote cannot be re-verified at the entry's time."""
    log = HostileLog([NOW - 15 * DAY, NOW - DAY])
    hostile.append(log)
    rc, report, evidence = _monitor(log, tmp_path, capsys)
    assert rc == 3, report
    (ev,) = evidence
    assert ev["kind"] == "bad-entry" and ev["entry"]["logIndex"] == 0
    assert any("collateral-not-yet-valid" in p for p in report["problems"]), report


def test_an_entry_from_the_future_of_its_checkpoint_is_a_problem(
    hostile: list[HostileLog], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Only the monitor saw when the checkpoint existed, which proves nothing to others: a problem, not
    evidence. The entries after it are not made to look backdated by it."""
    # Dated from the clock now, not from when the module was imported: the suite may run for minutes first.
    future = int(time.time()) + 4 * TIME_TOLERANCE_S
    log = HostileLog([NOW - DAY, future, NOW - DAY + 5])
    hostile.append(log)
    rc, report, evidence = _monitor(log, tmp_path, capsys)
    assert rc == 1 and evidence == [], report
    (problem,) = report["problems"]
    assert "entry 1" in problem and "future" in problem
