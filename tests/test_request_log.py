"""Structured JSON logs with request IDs."""

from __future__ import annotations

import json
import logging
import sys
import time

import httpx

from atlas_log_server.request_log import JsonFormatter
from tests.conftest import ServerProcess


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
