"""Replaying a log: rebuild the tree from entry bundles and re-verify every entry from its submission."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from atlas_log._encoding import b64decode
from atlas_log.checkpoint import open_checkpoint
from atlas_log.dsse import sign_envelope
from atlas_log.note import Verifier
from atlas_log.replay import Replay
from atlas_log.reverify import Checked, Trust, check_entry
from atlas_log.submission import (
    INTOTO_PAYLOAD_TYPE,
    build_submission,
    intoto_statement,
    signed_submission,
    spki_der,
    tdx_tee,
)
from atlas_log.tdx.binding import KEY_TAG, key_report_data
from atlas_log.tdx.collateral import Collateral
from atlas_log.testing.demo import demo_submission
from tests.conftest import ServerProcess

MODEL = "ab" * 32


def _populate(server: ServerProcess) -> int:
    """About 270 entries of every kind: payload-bound quotes, shared subjects (back-links), a fresh nonce, a
    key attestation and an entry that points to it. Returns the log size."""
    platform = server.platform
    key = Ed25519PrivateKey.generate()
    with httpx.Client(base_url=server.url, timeout=60) as http:

        def post(sub: dict[str, Any]) -> int:
            r = http.post("/api/v1/entries", json=sub)
            assert r.status_code == 201, r.text
            return int(r.json()["logIndex"])

        for i in range(260):
            post(demo_submission(key, i, platform))
        for step in range(3):  # the same model named by several entries: a chain of back-links
            payload = intoto_statement([("model.pt", MODEL)], "https://atlas-log.dev/test/v1", {"step": step})
            post(signed_submission(key, payload, platform))
        cp = open_checkpoint(http.get("/checkpoint").content, Verifier.from_vkey(server.vkey))
        payload = intoto_statement([("fresh", "cd" * 32)], "https://atlas-log.dev/test/v1", {})
        post(signed_submission(key, payload, platform, nonce=cp.root_hash))
        tee_key = Ed25519PrivateKey.generate()
        spki = spki_der(tee_key)
        attest = intoto_statement([("key", "ef" * 32)], "https://atlas-log.dev/test/v1", {})
        env = sign_envelope(INTOTO_PAYLOAD_TYPE, attest, tee_key)
        quote = platform.quote(key_report_data(spki))
        attested = post(build_submission(env, [spki], tee=tdx_tee(quote, binding=KEY_TAG)))
        later = intoto_statement([("model.pt", MODEL)], "https://atlas-log.dev/test/v1", {"step": 99})
        tee = {"type": "intel-tdx", "binding": KEY_TAG, "keyAttestationEntry": attested}
        post(build_submission(sign_envelope(INTOTO_PAYLOAD_TYPE, later, tee_key), [spki], tee=tee))
        return int(open_checkpoint(http.get("/checkpoint").content, Verifier.from_vkey(server.vkey)).size)


def _monitor(server: ServerProcess, tmp: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "atlas_log.cli",
            "--json",
            "monitor",
            "--log",
            server.url,
            "--vkey",
            server.vkey,
            "--replay",
            "--tdx-root",
            server.platform.root_fingerprint,
            "--once",
            "--evidence-dir",
            str(tmp / "evidence"),
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.timeout(600)
def test_replay_accepts_an_honest_log_and_catches_a_swapped_submission(
    server: ServerProcess, db_url: str, tmp_path: Path
) -> None:
    size = _populate(server)
    out = _monitor(server, tmp_path, "--replay-workers", "2")
    assert out.returncode == 0, out.stdout + out.stderr
    summary = json.loads(out.stdout.strip().splitlines()[-1])["replay"]
    assert summary["replayed"] == size and summary["problems"] == 0

    # The operator rewrites a stored submission behind the log's back (the leaf, and so the tree, stay).
    async def tamper() -> None:
        conn = await asyncpg.connect(db_url)
        await conn.execute("ALTER TABLE entries DISABLE TRIGGER USER")
        await conn.execute(
            "UPDATE entries SET submission = (SELECT submission FROM entries WHERE idx = 7) WHERE idx = 5"
        )
        await conn.execute("ALTER TABLE entries ENABLE TRIGGER USER")
        await conn.close()

    asyncio.run(tamper())
    # The log now serves a submission that is not the one its leaf commits to: a problem the monitor reports,
    # but not evidence: anyone could pair a leaf with another entry's submission.
    out = _monitor(server, tmp_path)
    assert out.returncode == 1, out.stdout + out.stderr
    assert not list((tmp_path / "evidence").glob("*.json"))
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert any("entry 5 is not evidence" in p and "not the one the leaf commits to" in p for p in report["problems"])


@pytest.mark.timeout(300)
def test_replay_continues_and_checks_every_kind_of_entry(server: ServerProcess) -> None:
    size = _populate(server)
    replay = Replay(server.url, Trust(tdx_roots=(server.platform.root_fingerprint,)), workers=1)
    vkey = Verifier.from_vkey(server.vkey)
    first = replay.run(open_checkpoint(httpx.get(server.url + "/checkpoint").content, vkey))
    assert first.problems == [] and first.entries == size
    with httpx.Client(base_url=server.url) as http:
        http.post("/api/v1/entries", json=demo_submission(Ed25519PrivateKey.generate(), 0, server.platform))
        second = replay.run(open_checkpoint(http.get("/checkpoint").content, vkey))
    assert second.problems == [] and second.entries == 1 and replay.tree.size == size + 1


def _entry(server: ServerProcess, index: int) -> tuple[bytes, bytes, Any]:
    e = httpx.get(f"{server.url}/api/v1/entries/{index}").json()
    leaf = b64decode(e["leaf"], "leaf")
    digest = orjson.loads(leaf)["body"]["tee"]["collateral"]["set"]
    coll = Collateral.from_json(httpx.get(f"{server.url}/api/v1/collateral/{digest}").json()["collateral"])
    return leaf, orjson.dumps(e["submission"]), coll


def test_check_entry_names_what_fails(server: ServerProcess) -> None:
    platform = server.platform
    with httpx.Client(base_url=server.url) as http:
        for i in range(2):
            r = http.post("/api/v1/entries", json=demo_submission(Ed25519PrivateKey.generate(), i, platform))
            assert r.status_code == 201
    leaf, sub, coll = _entry(server, 0)
    trust = Trust(tdx_roots=(platform.root_fingerprint,))
    assert check_entry(0, leaf, sub, lambda d: coll, trust).problem is None
    # Intel's root (the default) does not sign the simulated platform.
    assert "quote does not verify" in (check_entry(0, leaf, sub, lambda d: coll, Trust()).problem or "")
    # Collateral the log cannot produce.
    assert "not available" in (check_entry(0, leaf, sub, lambda d: None, trust).problem or "")
    # Another entry's submission for this leaf.
    _, other, _ = _entry(server, 1)
    swapped = check_entry(0, leaf, other, lambda d: coll, trust).problem or ""
    assert "back-links do not cover" in swapped or "not the one its submission produces" in swapped
    # A broken signature.
    obj = orjson.loads(sub)
    sig = obj["dsseEnvelope"]["signatures"][0]["sig"]
    obj["dsseEnvelope"]["signatures"][0]["sig"] = ("A" if sig[0] != "A" else "B") + sig[1:]
    assert "signature" in (check_entry(0, leaf, orjson.dumps(obj), lambda d: coll, trust).problem or "")
    # A leaf that is not an entry.
    assert "not an entry" in (check_entry(0, b"[]", sub, lambda d: coll, trust).problem or "")


def test_back_links_and_key_references_are_checked_in_order() -> None:
    last = {"sha256:" + MODEL: 3}
    ok = Checked(9, b"\0" * 32, None, ("sha256:" + MODEL,), {"sha256:" + MODEL: 3})
    assert Replay._sequential(ok, last, {}) is None
    skipped = Checked(9, b"\0" * 32, None, ("sha256:" + MODEL,), {"sha256:" + MODEL: 1})
    assert "previous entry naming it is 3" in (Replay._sequential(skipped, last, {}) or "")
    ref = Checked(9, b"\0" * 32, key_reference=(4, "fp", {"tcbStatus": "UpToDate"}))
    assert Replay._sequential(ref, {}, {4: ("fp", {"tcbStatus": "UpToDate"})}) is None
    assert "differs" in (Replay._sequential(ref, {}, {4: ("fp", {"tcbStatus": "OutOfDate"})}) or "")
    assert "not an earlier" in (Replay._sequential(ref, {}, {4: ("other", {"tcbStatus": "UpToDate"})}) or "")
    assert "not an earlier" in (Replay._sequential(ref, {}, {}) or "")


@pytest.mark.timeout(300)
def test_replay_checks_every_map_commitment_and_a_wrong_root_is_evidence(db_url: str, tmp_path: Path) -> None:
    server = ServerProcess(db_url, tmp_path / "data", env={"ATLAS_MAP_INTERVAL_S": "0.2"})
    try:
        key = Ed25519PrivateKey.generate()
        with httpx.Client(base_url=server.url, timeout=60) as http:
            for i in range(4):
                payload = intoto_statement([("model.pt", MODEL)], "https://atlas-log.dev/test/v1", {"step": i})
                assert (
                    http.post("/api/v1/entries", json=signed_submission(key, payload, server.platform)).status_code
                    == 201
                )

            async def versions() -> list[Any]:
                conn = await asyncpg.connect(db_url)
                try:
                    return list(await conn.fetch("SELECT * FROM map_versions WHERE commitment_idx IS NOT NULL"))
                finally:
                    await conn.close()

            deadline = time.monotonic() + 30
            while not asyncio.run(versions()) and time.monotonic() < deadline:
                time.sleep(0.1)
            out = _monitor(server, tmp_path)
            assert out.returncode == 0, out.stdout + out.stderr
            # The builder goes wrong: a version whose root is not the map of the leaves, committed by the log.
            size = int(open_checkpoint(http.get("/checkpoint").content, Verifier.from_vkey(server.vkey)).size)

            async def corrupt() -> None:
                conn = await asyncpg.connect(db_url)
                try:
                    await conn.execute(
                        "INSERT INTO map_versions (tree_size, root, keys) VALUES ($1, $2, 1)", size, b"\x07" * 32
                    )
                finally:
                    await conn.close()

            asyncio.run(corrupt())
            while time.monotonic() < deadline:
                rows = [r for r in asyncio.run(versions()) if r["tree_size"] == size]
                if rows:
                    break
                time.sleep(0.1)
        out = _monitor(server, tmp_path)
        assert out.returncode == 3, out.stdout + out.stderr  # evidence found
        files = list((tmp_path / "evidence").glob("*.json"))
        assert len(files) == 1, out.stdout + out.stderr
        evidence = json.loads(files[0].read_text())
        assert evidence["kind"] == "map-commitment" and len(evidence["leaves"]) == size
        check = subprocess.run(
            [sys.executable, "-m", "atlas_log.cli", "verify-evidence", str(files[0]), "--vkey", server.vkey],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert check.returncode == 0, check.stdout + check.stderr
        assert "committed" in check.stdout and "0707" in check.stdout
    finally:
        server.stop()


def test_an_entry_that_fails_does_not_fail_the_map_and_back_links_after_it(db_url: str, tmp_path: Path) -> None:
    """A replay that does not trust an entry's GPU roots fails that entry, and only it: what its statement names
    still counts for the log's map commitments and the back-links of later entries naming the same model."""
    server = ServerProcess(db_url, tmp_path / "data", env={"ATLAS_MAP_INTERVAL_S": "0.2"})
    try:
        key = Ed25519PrivateKey.generate()
        with httpx.Client(base_url=server.url, timeout=60) as http:
            for i, gpus in enumerate([server.gpu, None, None]):
                payload = intoto_statement([("model.pt", MODEL)], "https://atlas-log.dev/test/v1", {"step": i})
                posted = http.post("/api/v1/entries", json=signed_submission(key, payload, server.platform, gpus=gpus))
                assert posted.status_code == 201, posted.text
            deadline = time.monotonic() + 30
            while True:
                cp = open_checkpoint(http.get("/checkpoint").content, Verifier.from_vkey(server.vkey))
                if cp.size > 3:  # the map's commitment of the three entries
                    break
                assert time.monotonic() < deadline, "no map commitment was logged"
                time.sleep(0.1)
        result = Replay(server.url, Trust(tdx_roots=(server.platform.root_fingerprint,)), workers=1).run(cp)
        assert [index for index, _ in result.bad_entries] == [0], result.problems
        assert "GPU" in result.bad_entries[0][1]
        assert result.bad_commitments == [] and len(result.problems) == 1, result.problems
    finally:
        server.stop()
