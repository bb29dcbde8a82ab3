"""The atlas-log command line against a real server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from atlas_log import cli
from tests.conftest import ServerProcess


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
    assert cli.main([*base, "get", "7"]) == 0
    assert json.loads(capsys.readouterr().out)["logIndex"] == 7
    assert cli.main([*base, "get", "70"]) == 1
    assert "no entry at index 70" in capsys.readouterr().err


def test_wrong_pinned_key_fails(server: ServerProcess, capsys: pytest.CaptureFixture[str]) -> None:
    from atlas_log.note import Signer

    other = Signer.generate("atlas-log.localhost/dev").verifier.vkey  # right name, wrong key
    assert cli.main(["--server", server.url, "--vkey", other, "checkpoint"]) == 1
    assert "no signature from a trusted key" in capsys.readouterr().err
