"""The explorer's verifier (verify.js) against inputs the Python side builds, run in Node.js: the attacks a
lying log would try on a browser must fail there as they fail in the client library. Skips without Node."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from atlas_log.checkpoint import Checkpoint, sign_checkpoint
from atlas_log.cosignature import CosignatureSigner
from atlas_log.disclosure import Disclosure, blind, hidden_digests, redact, reveal
from atlas_log.dsse import pae
from atlas_log.errors import VerificationError
from atlas_log.history import verify_history
from atlas_log.merkle import EMPTY_ROOT
from atlas_log.note import Signer, format_note, parse_note
from atlas_log.pipeline import model_statement
from atlas_log.submission import signed_submission
from tests.conftest import ServerProcess

NODE = shutil.which("node")
VERIFY = Path(__file__).resolve().parent.parent / "server" / "atlas_log_server" / "explorer" / "verify.js"
pytestmark = pytest.mark.skipif(NODE is None, reason="no Node.js here: the explorer's verifier runs in browsers")

HARNESS = """
import * as V from %s;
const cases = JSON.parse(process.argv[2]);
const out = {};
for (const [name, c] of Object.entries(cases)) {
  try {
    if (c.kind === "cosign") {
      const vk = await V.parseVkey(c.vkey);
      const cp = await V.openCheckpoint(c.note, vk);
      const ws = [];
      for (const w of c.witnesses) ws.push(await V.parseVkey(w, [1, 4]));
      out[name] = (await V.cosignatures(cp, ws)).filter((x) => x.ok).length;
    } else if (c.kind === "statement") {
      V.verifyStatement(c.envelope, c.body);
      out[name] = "ok";
    } else if (c.kind === "reveal") {
      const r = V.revealDisclosures(c.statement, c.disclosures);
      out[name] = r.shown;
      out[`${name} undisclosed`] = r.undisclosed;
    } else if (c.kind === "blind") {
      out[name] = V.blindDigest(V.b64decode(c.key), c.artifact);
    } else if (c.kind === "history") {
      const vk = await V.parseVkey(c.vkey);
      const r = await V.verifyHistory(c.answer, vk, c.answer.artifact);
      out[name] = r.complete ? "complete" : "ok";
    } else if (c.kind === "lineage") {
      const vk = await V.parseVkey(c.vkey);
      const r = await V.verifyLineage(c.answer, vk, c.answer.artifact, "up", c.depth);
      out[name] = r.complete ? "complete" : "ok";
    }
  } catch (e) {
    out[name] = `failed: ${e.message}`;
  }
}
console.log(JSON.stringify(out));
"""


def _run(cases: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    harness = tmp_path / "harness.mjs"
    harness.write_text(HARNESS % json.dumps(VERIFY.as_uri()))
    out = subprocess.run([NODE or "node", str(harness), json.dumps(cases)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return dict(json.loads(out.stdout))


def test_one_witness_cannot_make_a_quorum_by_repeating_its_line(tmp_path: Path) -> None:
    log = Signer.generate("log.example/a")
    w1, w2 = (CosignatureSigner(f"w{i}.example", Ed25519PrivateKey.generate()) for i in (1, 2))
    cp = Checkpoint("log.example/a", 0, EMPTY_ROOT)
    note = parse_note(sign_checkpoint(cp, log))
    line = w1.sign(note.text, 1_700_000_000)
    repeated = format_note(note.text, [*note.signatures, line, line]).decode()
    both = format_note(note.text, [*note.signatures, line, w2.sign(note.text, 1_700_000_001)]).decode()
    vkeys = [w1.verifier.vkey, w2.verifier.vkey]
    got = _run(
        {
            "repeated": {"kind": "cosign", "vkey": log.verifier.vkey, "note": repeated, "witnesses": vkeys},
            "listed twice": {
                "kind": "cosign",
                "vkey": log.verifier.vkey,
                "note": repeated,
                "witnesses": [vkeys[0]] * 2,
            },
            "both": {"kind": "cosign", "vkey": log.verifier.vkey, "note": both, "witnesses": vkeys},
        },
        tmp_path,
    )
    assert got == {"repeated": 1, "listed twice": 1, "both": 2}


def test_a_statement_is_shown_only_if_the_signatures_cover_it(tmp_path: Path) -> None:
    payload, other = b'{"_type": "statement"}', b'{"_type": "another"}'
    body = {"paeHash": {"sha256": hashlib.sha256(pae("application/vnd.in-toto+json", payload)).hexdigest()}}

    def env(p: bytes) -> dict[str, str]:
        return {"payloadType": "application/vnd.in-toto+json", "payload": base64.b64encode(p).decode()}

    got = _run(
        {
            "signed": {"kind": "statement", "envelope": env(payload), "body": body},
            "swapped": {"kind": "statement", "envelope": env(other), "body": body},
        },
        tmp_path,
    )
    assert got["signed"] == "ok" and got["swapped"].startswith("failed: the statement")


def test_a_lineage_at_another_depth_than_asked_fails(tmp_path: Path) -> None:
    log = Signer.generate("log.example/a")
    note = sign_checkpoint(Checkpoint("log.example/a", 0, EMPTY_ROOT), log).decode()
    artifact = "sha256:" + "ab" * 32
    answer = {
        "artifact": artifact,
        "direction": "up",
        "depth": 0,
        "treeSize": 0,
        "checkpoint": note,
        "nodes": [artifact],
        "edges": [],
        "entries": [],
        "truncated": False,
    }
    got = _run(
        {
            "depth 0": {"kind": "lineage", "vkey": log.verifier.vkey, "answer": answer, "depth": 5},
            "depth 1 for 5": {
                "kind": "lineage",
                "vkey": log.verifier.vkey,
                "answer": {**answer, "depth": 1},
                "depth": 5,
            },
            "as asked": {"kind": "lineage", "vkey": log.verifier.vkey, "answer": {**answer, "depth": 5}, "depth": 5},
        },
        tmp_path,
    )
    assert got["depth 0"].startswith("failed: the answer is the lineage to depth")
    assert got["depth 1 for 5"].startswith("failed: the answer is the lineage to depth")
    assert got["as asked"] == "ok"  # verified, and without a completeness proof not called complete


def test_a_component_history_is_proved_by_facts_in_the_browser_as_in_the_client(db_url: str, tmp_path: Path) -> None:
    """A file named only in model-signing resources: the browser proves the entries by the fact lists their
    leaves commit to, and catches what the client catches (a hidden entry, withheld or swapped facts)."""
    server = ServerProcess(db_url, tmp_path / "data", env={"ATLAS_MAP_INTERVAL_S": "0.2"})
    try:
        key = Ed25519PrivateKey.generate()
        shared = hashlib.sha256(b"shared tokenizer").hexdigest()
        for i in range(3):
            files = {"tokenizer.json": shared, "model.safetensors": hashlib.sha256(b"w%d" % i).hexdigest()}
            sub = signed_submission(key, model_statement(f"m{i}", files), server.platform)
            assert httpx.post(server.url + "/api/v1/entries", json=sub).status_code == 201
        url = f"{server.url}/api/v1/artifacts/sha256:{shared}/history"
        deadline = time.monotonic() + 30
        while True:  # until the committed map covers all three
            h = verify_history(answer := httpx.get(url).json(), server.vkey)
            if h.complete_as_of is not None and len(h.entries) == 3 and h.complete_as_of > h.entries[0].log_index:
                break
            assert time.monotonic() < deadline, "the map did not commit"
            time.sleep(0.1)
        vkey = server.vkey
    finally:
        server.stop()
    entries = answer["entries"]
    assert len(entries) == 3 and all("facts" in e for e in entries)
    variants = {
        "honest": answer,
        "middle hidden": {**answer, "entries": [entries[0], entries[2]]},
        "facts withheld": {**answer, "entries": [{k: v for k, v in entries[0].items() if k != "facts"}, *entries[1:]]},
        "facts swapped": {**answer, "entries": [{**entries[0], "facts": entries[1]["facts"]}, *entries[1:]]},
    }
    got = _run({n: {"kind": "history", "vkey": vkey, "answer": a} for n, a in variants.items()}, tmp_path)
    assert got["honest"] == "complete"
    assert "counts 3" in got["middle hidden"]
    assert "does not name" in got["facts withheld"]
    assert "not the ones the entry commits to" in got["facts swapped"]
    for name, variant in variants.items():  # the client library agrees on each
        if name != "honest":
            with pytest.raises(VerificationError):
                verify_history(variant, vkey)


def test_the_browser_reveals_what_the_client_reveals_and_refuses_what_it_refuses(tmp_path: Path) -> None:
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "m", "digest": {"sha256": "ab" * 32}}],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {"params": {"dataset": "s3://x", "lr": 0.01, "nested": {"a": [1, 2]}}, "deps": ["p", "q"]},
    }
    redacted, ds = redact(statement, ["predicate.params.dataset", "predicate.params.nested.a[1]", "predicate.deps[0]"])
    forged = Disclosure.make("dataset", "s3://y")
    got = _run(
        {
            "all": {"kind": "reveal", "statement": redacted, "disclosures": [d.encoded for d in ds]},
            "one": {"kind": "reveal", "statement": redacted, "disclosures": [ds[0].encoded]},
            "forged": {"kind": "reveal", "statement": redacted, "disclosures": [forged.encoded]},
            "twice": {"kind": "reveal", "statement": redacted, "disclosures": [ds[0].encoded, ds[0].encoded]},
        },
        tmp_path,
    )
    want = [[p, d.value] for p, d in reveal(redacted, ds).disclosed]
    assert got["all"] == want
    assert got["one"] == [[p, d.value] for p, d in reveal(redacted, ds[:1]).disclosed]
    # What stays hidden is counted as the client counts it (the nested element's digest included once revealed).
    assert got["all undisclosed"] == 0
    assert got["one undisclosed"] == len(hidden_digests(reveal(redacted, ds[:1]).statement)) == len(ds) - 1
    assert "not committed" in got["forged"] and "twice" in got["twice"]


def test_the_browser_blinds_a_digest_as_the_client_does(tmp_path: Path) -> None:
    key = bytes(range(32))
    digest = hashlib.sha256(b"dataset").hexdigest()
    cases = {
        "plain": f"sha256:{digest}",
        "spelt otherwise": f"SHA2-256:{digest.upper()}",
        "sha512": "sha512:" + "ab" * 64,
        "blinded": f"blinded+sha256:{digest}",
        "not hex": "sha256:xyz",
    }
    got = _run(
        {n: {"kind": "blind", "key": base64.b64encode(key).decode(), "artifact": a} for n, a in cases.items()},
        tmp_path,
    )
    assert got["plain"] == got["spelt otherwise"] == ":".join(blind(key, "sha256", digest))
    assert got["sha512"] == ":".join(blind(key, "sha512", "ab" * 64))
    assert got["blinded"].startswith("failed") and got["not hex"].startswith("failed")
