"""Logs: JSON lines with request IDs, or readable text on a terminal; uvicorn's lines through the same formatter."""

from __future__ import annotations

import base64
import json
import logging
import os
import pty
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from atlas_log.submission import intoto_statement
from atlas_log.testing.demo import DEMO_PREDICATE, demo_submission
from atlas_log_server.request_log import JsonFormatter, LogFormat, configure_logging
from tests.conftest import ServerProcess, free_port


def _lines(server: ServerProcess) -> list[dict[str, object]]:
    out = []
    for line in server.log_path.read_text().splitlines():
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


def test_every_request_has_an_id_in_its_response_and_its_log_line(server: ServerProcess) -> None:
    given = httpx.get(server.url + "/api/v1/entries/999", headers={"X-Request-ID": "trace-42"})
    assert given.status_code == 404 and given.headers["x-request-id"] == "trace-42"
    made = httpx.get(server.url + "/healthz", headers={"X-Request-ID": "no spaces allowed"})
    assert made.headers["x-request-id"] != "no spaces allowed" and len(made.headers["x-request-id"]) == 32
    time.sleep(0.5)
    lines = _lines(server)
    access = [x for x in lines if x.get("logger") == "atlas_log_server.access"]
    mine = [x for x in access if x.get("request_id") == "trace-42"]
    assert mine and mine[0]["status"] == 404 and mine[0]["path"] == "/api/v1/entries/999"
    assert any(x.get("request_id") == made.headers["x-request-id"] for x in access)
    assert all({"time", "level", "logger", "message"} <= set(x) for x in lines)


def test_json_formatter_keeps_exceptions_in_the_log() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed %s", ("here",), exc_info=True)
        record.exc_info = sys.exc_info()
    out = json.loads(JsonFormatter().format(record))
    assert out["message"] == "failed here" and "ValueError: boom" in out["exception"]


TEXT_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) +[\w.-]+: \S.*")
CANARY = "s3://vendor-secret/canary-51d0e2"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """configure_logging sets up the process's root logger: put back what pytest had."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _log_to(stream: TextIO, fmt: LogFormat) -> str:
    configure_logging(fmt, "info", stream)
    logging.getLogger("atlas_log_server.log.sequencer").info("batch of %d entries", 3)
    stream.flush()
    return "sequencer: batch of 3 entries"


def test_text_on_a_terminal_json_elsewhere_unless_the_setting_says(restore_logging: None) -> None:
    master, slave = pty.openpty()
    read_fd, write_fd = os.pipe()
    with os.fdopen(slave, "w") as terminal, os.fdopen(write_fd, "w") as pipe:
        for fmt, stream, fd, want in [
            ("auto", terminal, master, "text"),
            ("auto", pipe, read_fd, "json"),
            ("json", terminal, master, "json"),
            ("text", pipe, read_fd, "text"),
        ]:
            said = _log_to(stream, fmt)
            line = os.read(fd, 65536).decode().strip()
            if want == "text":
                assert TEXT_LINE.fullmatch(line) and " INFO " in line and line.endswith(said), (fmt, line)
            else:
                assert json.loads(line)["message"] == "batch of 3 entries", (fmt, line)
    os.close(master)
    os.close(read_fd)


class Terminal:
    """A child process whose stdout and stderr are a real pseudo-terminal; keeps what it writes there."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self._master, slave = pty.openpty()
        self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)
        os.close(slave)
        self._chunks: list[bytes] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self._master, 65536)
            except OSError:  # EIO: the child closed its end
                return
            if not data:
                return
            self._chunks.append(data)

    @property
    def output(self) -> str:
        return b"".join(self._chunks).decode(errors="replace").replace("\r\n", "\n")

    def stop(self) -> str:
        """Ctrl+C, as an operator stops it; returns what the process wrote."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(15)
        self._reader.join(5)
        os.close(self._master)
        return self.output


def _tampered_submission() -> dict[str, object]:
    """A signed demo entry whose statement was swapped for one naming the canary: its signature fails."""
    sub = demo_submission(Ed25519PrivateKey.generate(), 0)
    statement = intoto_statement([("model", "ab" * 32)], DEMO_PREDICATE, {"dataset": CANARY})
    sub["dsseEnvelope"]["payload"] = base64.b64encode(statement).decode()
    return sub


def test_serve_on_a_terminal_writes_readable_lines_through_one_formatter(db_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "ATLAS_DATABASE_URL": db_url, "ATLAS_DATA_DIR": str(tmp_path), "ATLAS_MAP_INTERVAL_S": "0"}
    env.pop("ATLAS_LOG_FORMAT", None)
    term = Terminal([sys.executable, "-m", "atlas_log_server.cli", "serve", "--port", str(port)], env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert term.proc.poll() is None and time.monotonic() < deadline, term.output
            try:
                if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        assert httpx.get(url + "/healthz").status_code == 200
        rejected = httpx.post(url + "/api/v1/entries", json=_tampered_submission())
        assert rejected.status_code // 100 == 4
        problem = rejected.json()
        time.sleep(0.5)
    finally:
        out = term.stop()
    assert term.proc.returncode == 0, out  # stopped as asked, without a KeyboardInterrupt traceback
    logged = [line for line in out.splitlines() if line and not line.startswith(("Atlas Log serving", "  "))]
    assert logged and all(TEXT_LINE.fullmatch(line) for line in logged), out
    # uvicorn's own lines come through the same formatter (not its "INFO:     ..." one), none suppressed.
    assert any(line.endswith(" INFO    uvicorn: Application startup complete.") for line in logged), out
    assert any(re.search(rf" INFO +cli: listening on {re.escape(url)} ", line) for line in logged), out
    assert re.search(r" INFO +access: GET /healthz 200 \d+(\.\d+)? ?ms$", out, re.MULTILINE), out
    # A rejected submission: its problem type and reason, never what it carried.
    slug = problem["type"].rsplit("/", 1)[1]
    rejection = [line for line in logged if "POST /api/v1/entries" in line]
    assert len(rejection) == 1 and " WARNING " in rejection[0], out
    assert f"{slug}: {problem['detail']}" in rejection[0], rejection
    assert CANARY not in out


def test_the_log_format_setting_wins_over_the_terminal_check(db_url: str, tmp_path: Path) -> None:
    server = ServerProcess(db_url, tmp_path / "data", env={"ATLAS_LOG_FORMAT": "text"})  # output to a file
    try:
        httpx.post(server.url + "/api/v1/entries", json=_tampered_submission())
        time.sleep(0.5)
    finally:
        server.stop()
    out = server.log_path.read_text()
    logged = [line for line in out.splitlines() if line and not line.startswith(("Atlas Log serving", "  "))]
    assert logged and all(TEXT_LINE.fullmatch(line) for line in logged), out
    assert any("POST /api/v1/entries 4" in line for line in logged) and CANARY not in out
