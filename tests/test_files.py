from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from atlas_log.files import create_once, remove_leftovers, write_atomic


def test_writes_and_replaces(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    write_atomic(path, b"one")
    write_atomic(path, b"two")
    assert path.read_bytes() == b"two"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    write_atomic(path, b"three", mode=0o644)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]  # no temporary file left


def test_a_failed_rename_leaves_the_old_file_and_no_temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "state.json"
    write_atomic(path, b"old")

    def fail(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(path, b"new")
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_a_crash_before_the_rename_leaves_the_old_file(tmp_path: Path) -> None:
    """A process that dies after writing the temporary file but before renaming it."""
    path = tmp_path / "state.json"
    write_atomic(path, b"old")
    code = (
        "import os, sys; from atlas_log.files import write_atomic;"
        "os.replace = lambda *a: os._exit(9);"
        f"write_atomic({str(path)!r}, b'new' * 1000)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 9, out.stderr
    assert path.read_bytes() == b"old"
    leftovers = [p for p in tmp_path.iterdir() if p.name != "state.json"]
    assert len(leftovers) == 1 and leftovers[0].name.startswith(".state.json.")  # never mistaken for the file


def test_the_folder_must_exist(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_atomic(tmp_path / "missing" / "f", b"x")


def test_create_once_keeps_what_is_there(tmp_path: Path) -> None:
    target = tmp_path / "key"
    assert create_once(target, b"first") == b"first"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert create_once(target, b"second") == b"first"  # never replaced: the caller learns what it holds
    assert target.read_bytes() == b"first"
    assert os.listdir(tmp_path) == ["key"]  # no temporary left either way


def test_create_once_where_files_cannot_be_linked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(src: object, dst: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", refuse)
    target = tmp_path / "key"
    assert create_once(target, b"first") == b"first"
    assert create_once(target, b"second") == b"first"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert os.listdir(tmp_path) == ["key"]


def test_leftovers_of_a_killed_writer_are_removed(tmp_path: Path) -> None:
    target = tmp_path / "key"
    target.write_bytes(b"live")
    os.link(target, tmp_path / ".key.abc123.tmp")  # what a crash between link and unlink leaves
    (tmp_path / ".other.x.tmp").write_bytes(b"not ours")
    remove_leftovers(target)
    assert sorted(os.listdir(tmp_path)) == [".other.x.tmp", "key"]
