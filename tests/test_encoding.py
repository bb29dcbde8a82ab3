"""One JSON parser with one set of limits (size, depth, integer range) for admission, replay, verify-evidence
and every reader of stored entries: what the log admits, every monitor can replay."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import asyncpg
import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from atlas_log._encoding import JSON_LIMITS, b64decode, json_loads
from atlas_log.checkpoint import open_checkpoint
from atlas_log.errors import FormatError
from atlas_log.note import Verifier
from atlas_log.replay import Replay
from atlas_log.reverify import Trust
from atlas_log.testing.demo import demo_submission
from tests.conftest import ServerProcess


def _nested(depth: int) -> Any:
    """A value of exactly ``depth`` nested containers."""
    value: Any = []
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def _body(sub: dict[str, Any]) -> bytes:
    return json.dumps(sub, separators=(",", ":")).encode()


@pytest.mark.parametrize(
    "text",
    [
        "AB==",  # non-zero bits beside the padding: a second spelling of b"\x00"
        "AAB=",
        "AAAA====",  # a quantum of nothing but padding
        "AAAA=AAA",
        "AA=A",
        "=AAA",
        "AAA",  # unpadded
        "AA\nA",
        "AA-_",  # the URL-safe alphabet
        " AAA",
    ],
)
def test_base64_has_one_spelling(text: str) -> None:
    with pytest.raises(FormatError):
        b64decode(text)


def test_base64_decodes_every_canonical_tail() -> None:
    for data in (b"", b"\x00", b"\xff\xfe", b"\x01\x02\x03", bytes(range(256))):
        assert b64decode(base64.b64encode(data).decode()) == data


def test_json_loads_enforces_the_limits() -> None:
    top = JSON_LIMITS.max_depth
    assert json_loads(json.dumps(_nested(top))) == _nested(top)
    assert json_loads(b"[%d,%d]" % (JSON_LIMITS.min_int, JSON_LIMITS.max_int)) == [
        JSON_LIMITS.min_int,
        JSON_LIMITS.max_int,
    ]
    for bad in (
        json.dumps(_nested(top + 1)).encode(),
        b"[" * 5000 + b"]" * 5000,  # deeper than the parser's own recursion: still a FormatError
        b"%d" % (JSON_LIMITS.max_int + 1),
        b"%d" % (JSON_LIMITS.min_int - 1),
        b"1e400",  # a float that overflows to infinity
        b"NaN",
        b'"\\ud800"',  # a lone surrogate
        b'{"\\udc00": 1}',
        b'{"a": 1, "a": 2}',  # which one a verifier reads would depend on its parser
        b"\xff",
        b" " * (JSON_LIMITS.max_bytes + 1),
    ):
        with pytest.raises(FormatError):
            json_loads(bad)
    assert json_loads(b'"\\ud83d\\ude00"') == "\U0001f600"  # a surrogate pair is one character


@pytest.mark.timeout(300)
def test_a_submission_at_the_limits_is_admitted_and_replays(server: ServerProcess) -> None:
    key = Ed25519PrivateKey.generate()
    platform = server.platform
    edge = demo_submission(key, 0, platform)
    # The deepest annotation the limits allow (the submission object is one level), the extreme integers,
    # and padding up to exactly the size limit.
    edge["annotations"] = {
        "deep": _nested(JSON_LIMITS.max_depth - 2),
        "ints": [JSON_LIMITS.min_int, JSON_LIMITS.max_int],
    }
    edge["annotations"]["pad"] = ""
    edge["annotations"]["pad"] = "x" * (JSON_LIMITS.max_bytes - len(_body(edge)))
    body = _body(edge)
    assert len(body) == JSON_LIMITS.max_bytes
    with httpx.Client(base_url=server.url, timeout=60, headers={"content-type": "application/json"}) as http:
        r = http.post("/api/v1/entries", content=body)
        assert r.status_code == 201, r.text
        assert http.get("/api/v1/entries/0").json()["submission"] == edge
        beyond: list[tuple[str, dict[str, Any]]] = [
            ("deep", {"annotations": {"deep": _nested(JSON_LIMITS.max_depth)}}),
            ("big integer", {"annotations": {"n": JSON_LIMITS.max_int + 1}}),
            ("small integer", {"annotations": {"n": JSON_LIMITS.min_int - 1}}),
        ]
        for n, (what, extra) in enumerate(beyond, start=1):
            r = http.post("/api/v1/entries", content=_body({**demo_submission(key, n, platform), **extra}))
            assert r.status_code == 400, (what, r.status_code, r.text)
            assert r.json()["type"].endswith("/invalid-json"), r.text
        r = http.post("/api/v1/entries", content=body + b" ")
        assert r.status_code == 413, r.text
        cp = open_checkpoint(http.get("/checkpoint").content, Verifier.from_vkey(server.vkey))
    assert cp.size == 1
    result = Replay(server.url, Trust(tdx_roots=(platform.root_fingerprint,)), workers=1).run(cp)
    assert result.entries == 1 and result.problems == [], result.problems


def test_a_stored_entry_is_always_readable(server: ServerProcess, db_url: str) -> None:
    """Whatever the database holds (written by an older version, or by an operator), the entry endpoint
    answers with it, never with a 500."""
    with httpx.Client(base_url=server.url, timeout=60) as http:
        r = http.post("/api/v1/entries", json=demo_submission(Ed25519PrivateKey.generate(), 0, server.platform))
        assert r.status_code == 201, r.text

        async def rewrite() -> None:
            conn = await asyncpg.connect(db_url)
            await conn.execute("ALTER TABLE entries DISABLE TRIGGER USER")
            deep = b'{"a":' + b"[" * 5000 + b"]" * 5000 + b"}"
            await conn.execute("UPDATE entries SET submission = $1 WHERE idx = 0", deep)
            await conn.execute("ALTER TABLE entries ENABLE TRIGGER USER")
            await conn.close()

        asyncio.run(rewrite())
        r = http.get("/api/v1/entries/0")
        assert r.status_code == 200, r.text
        assert isinstance(r.json()["submission"], str)  # served as the stored bytes, base64
        assert http.get("/api/v1/entries/0/evidence").status_code < 500
        cp = open_checkpoint(http.get("/checkpoint").content, Verifier.from_vkey(server.vkey))
    # A monitor replaying the log flags that entry (its submission is beyond the limits), and goes on.
    result = Replay(server.url, Trust(tdx_roots=(server.platform.root_fingerprint,)), workers=1).run(cp)
    assert [i for i, _ in result.bad_entries] == [0] and "not valid JSON" in result.bad_entries[0][1]
