"""Evidence packs: written from a real log by the CLI, re-verified offline (the log stopped), and refused when any
byte is altered, whether the archive still reads or was rebuilt around a lie."""

from __future__ import annotations

import io
import json
import shlex
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from atlas_log.entry import canonical_json
from atlas_log.errors import Error
from atlas_log.pack import MANIFEST, SUMMARY, _zip, verify_pack
from atlas_log.pipeline import deployment_statement
from atlas_log.reverify import Trust
from tests.conftest import ServerProcess
from tests.pipeline import MODEL, record_pipeline
from tests.test_regulator import D, h


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "atlas_log.cli", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def packed(tmp_path_factory: pytest.TempPathFactory, pg_url: str, template_db: str) -> Iterator[tuple[bytes, str, str]]:
    """(pack bytes, log key, simulated TDX root) of the pipeline's model, the log stopped afterwards."""
    from tests.conftest import copy_database

    url = copy_database(pg_url, template_db, f"atlas_pack_{id(tmp_path_factory)}")
    tmp = tmp_path_factory.mktemp("pack")
    server = ServerProcess(url, tmp / "data", env={"ATLAS_MAP_INTERVAL_S": "0.2"})
    try:
        # Anyone may log a statement naming the model: this one's names would write headings and lines of
        # their own into the summary a regulator reads.
        record_pipeline(
            server,
            deployment_statement(
                ("shadow\n# Verdict: all clear", h("shadow")),
                {"fraud-detector": D["m1"]},
                "x\n- [forged](https://e.example) |",
            ),
        )
        out = _cli("--server", server.url, "--vkey", server.vkey, "pack", MODEL, "--out", str(tmp / "case.zip"))
        assert out.returncode == 0, out.stdout + out.stderr
        vkey, root = server.vkey, server.platform.root_fingerprint
        # The command it prints checks the pack as printed: on a development log, trusting its simulated roots.
        printed = out.stdout.split("verify it offline with", 1)[1].split()
        assert printed[0] == "atlas-log" and f"--tdx-root {root}" in " ".join(printed), out.stdout
        again = _cli(*shlex.split(" ".join(printed[1:])))
        assert again.returncode == 0 and "verdict: verified offline" in again.stdout, again.stdout + again.stderr
        assert "| naming it |" in again.stdout and "| on a lineage edge |" in again.stdout  # why each is there
        # A digest no entry names (mistyped): the pack is written, and both it and its writer say so.
        nothing = _cli(
            "--server", server.url, "--vkey", server.vkey, "pack", "sha256:" + "0" * 64, "--out", str(tmp / "n.zip")
        )
        assert nothing.returncode == 0 and "no entry of this log names sha256:" in nothing.stderr, nothing.stderr
        checked = _cli("verify-pack", str(tmp / "n.zip"), "--vkey", vkey)
        assert "No entry of this log names this artifact" in checked.stdout, checked.stdout
    finally:
        server.stop()
    yield (tmp / "case.zip").read_bytes(), vkey, root


def test_a_pack_verifies_offline_and_reads_as_a_case(packed: tuple[bytes, str, str], tmp_path: Path) -> None:
    data, vkey, root = packed
    (tmp_path / "case.zip").write_bytes(data)
    out = _cli("verify-pack", str(tmp_path / "case.zip"), "--vkey", vkey, "--tdx-root", root)
    assert out.returncode == 0, out.stdout + out.stderr
    text = out.stdout
    assert "fraud-detector" in text and "clean-dataset" in text and "train.py" in text
    assert "evaluated on" in text and "test-dataset" in text and "PASSED (auc 0.97)" in text  # named, its figures
    # What statements chose stays text on its own line: no heading, list item, link or cell of theirs.
    assert "shadow\\n# Verdict: all clear" in text and "x\\n- \\[forged\\](https://e.example) \\|" in text, text
    assert not any(line.startswith(("# Verdict", "- [forged")) for line in text.splitlines()), text
    assert "deployed as" in text and "fraud-svc" in text
    assert "complete as of tree size" in text and "verdict: verified offline" in text
    assert "verified against the TDX root --tdx-root names, not Intel's" in " ".join(text.split())
    as_json = _cli("verify-pack", str(tmp_path / "case.zip"), "--vkey", vkey, "--tdx-root", root, "--json")
    verdict = json.loads(as_json.stdout)
    assert verdict["verified"] is True and verdict["entries"] == 5 and verdict["historyCompleteAsOf"] is not None
    # Without the simulated platform's root trusted, the quotes do not verify: the pack does not hold.
    untrusted = _cli("verify-pack", str(tmp_path / "case.zip"), "--vkey", vkey)
    assert untrusted.returncode == 1 and "does not verify" in untrusted.stdout, untrusted.stdout
    assert "pack not verified under the roots given" in untrusted.stdout  # a configuration, not a forgery
    assert "hint: a development log's quotes come from its simulated platform: pass --tdx-root" in untrusted.stderr


def test_every_altered_byte_fails(packed: tuple[bytes, str, str]) -> None:
    data, vkey, root = packed
    trust = Trust(tdx_roots=(root,))
    verify_pack(data, vkey, trust=trust)
    step = max(1, len(data) // 300)
    # Sampled through the body, and every byte of the first header and of the central directory at the end,
    # where a flipped bit reaches zipfile's own checks (flags, compression method, sizes).
    for at in sorted({*range(0, len(data), step), *range(64), *range(len(data) - 200, len(data))}):
        altered = bytearray(data)
        altered[at] ^= 0x01
        with pytest.raises(Error):
            verify_pack(bytes(altered), vkey, trust=trust)
    with pytest.raises(Error):
        verify_pack(data + b"\0", vkey, trust=trust)


def _rebuilt(data: bytes, change: Any) -> bytes:
    """The pack with its manifest changed and the archive rebuilt around it (CRCs and all)."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        manifest, summary = json.loads(z.read(MANIFEST)), z.read(SUMMARY)
    manifest, summary = change(manifest, summary)
    return _zip(canonical_json(manifest), summary)


@pytest.mark.parametrize(
    ("what", "change", "reason"),
    [
        ("summary", lambda m, s: (m, s.replace(b"PASSED", b"FAILED")), "summary"),
        ("an entry dropped", lambda m, s: (_drop_entry(m), s), "exactly"),
        (
            "a submission swapped",
            lambda m, s: ({**m, "entries": _swap(m["entries"])}, s),
            "does not verify",
        ),
        ("the newest history entry hidden", lambda m, s: (_hide_newest(m), s), "newest|gap|incomplete"),
        ("another log's key", lambda m, s: ({**m, "log": {**m["log"], "vkey": "x+00000000+AQ=="}}, s), "log key"),
        ("an unused proof", lambda m, s: ({**m, "consistency": {**m["consistency"], "5": ["x"]}}, s), "exactly"),
        ("an unproved alias", lambda m, s: (_page(m, aliases=["sha256:" + "00" * 32]), s), "aliases"),
        ("names the log merely says", lambda m, s: (_named(m), s), "exactly"),
        ("a lineage said to be capped", lambda m, s: (_capped(m), s), "capped"),
        ("no witnesses required", lambda m, s: ({**m, "log": {**m["log"], "quorum": 1}}, s), "quorum"),
    ],
)
def test_a_pack_rebuilt_around_a_lie_fails(packed: tuple[bytes, str, str], what: str, change: Any, reason: str) -> None:
    data, vkey, root = packed
    with pytest.raises(Error, match=reason):
        verify_pack(_rebuilt(data, change), vkey, trust=Trust(tdx_roots=(root,)))


def _page(m: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**m, "history": [{**m["history"][0], **changes}, *m["history"][1:]]}


def _named(m: dict[str, Any]) -> dict[str, Any]:
    page = m["history"][0]
    entries = [{**page["entries"][0], "artifacts": [{"name": "trusted-model"}]}, *page["entries"][1:]]
    return _page(m, entries=entries)


def _capped(m: dict[str, Any]) -> dict[str, Any]:
    return {**m, "lineage": {**m["lineage"], "up": {**m["lineage"]["up"], "truncated": True}}}


def _drop_entry(m: dict[str, Any]) -> dict[str, Any]:
    entries = dict(m["entries"])
    del entries[min(entries)]
    return {**m, "entries": entries}


def _swap(entries: dict[str, Any]) -> dict[str, Any]:
    a, b = sorted(entries)[:2]
    return {**entries, a: entries[b], b: entries[a]}


def _hide_newest(m: dict[str, Any]) -> dict[str, Any]:
    page = m["history"][0]
    return {**m, "history": [{**page, "entries": page["entries"][1:]}, *m["history"][1:]]}


def test_the_verifiers_witness_policy_is_applied(packed: tuple[bytes, str, str]) -> None:
    from atlas_log.cosignature import CosignatureSigner

    data, vkey, root = packed
    witness = CosignatureSigner("witness.example", Ed25519PrivateKey.generate()).verifier
    # This log's checkpoints carry no cosignature: a verifier requiring one of its witness refuses the pack.
    with pytest.raises(Error, match=r"cosignature|witness|quorum"):
        verify_pack(data, vkey, witnesses=[witness], quorum=1, trust=Trust(tdx_roots=(root,)))
    verdict = verify_pack(data, vkey, witnesses=[witness], quorum=0, trust=Trust(tdx_roots=(root,)))
    assert verdict.witnesses == (witness.vkey,) and verdict.quorum == 0 and verdict.depth == 5
    # Witnesses without a quorum mean all of them (as everywhere), never the quorum the pack names (0 here).
    with pytest.raises(Error, match=r"cosignature|witness|quorum"):
        verify_pack(data, vkey, witnesses=[witness], trust=Trust(tdx_roots=(root,)))


def test_the_command_lines_witnesses_are_required_of_a_pack(packed: tuple[bytes, str, str], tmp_path: Path) -> None:
    from atlas_log.cosignature import CosignatureSigner

    data, vkey, root = packed
    (tmp_path / "case.zip").write_bytes(data)
    witness = CosignatureSigner("witness.example", Ed25519PrivateKey.generate()).verifier
    args = ["verify-pack", str(tmp_path / "case.zip"), "--vkey", vkey, "--tdx-root", root, "--witness", witness.vkey]
    r = _cli(*args)
    assert r.returncode == 1 and "witness" in r.stdout + r.stderr, r.stdout
    assert _cli(*args, "--quorum", "0").returncode == 0
