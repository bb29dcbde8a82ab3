"""Durable, atomic file writes: after a crash at any moment, a reader finds the old bytes or the new.

The bytes go to a fresh temporary file in the same folder (so the rename cannot cross file systems), which is
fsynced, renamed over the target (atomic on POSIX), and then the folder is fsynced so the rename itself
survives a power loss. :func:`create_once` links the file into place instead, so the first of several
processes creating it at once wins and the others read its bytes, whole.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

__all__ = ["create_once", "remove_leftovers", "write_atomic"]


def write_atomic(path: str | Path, data: bytes, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` (file mode ``mode``) atomically and durably.

    The folder must exist. Raises :class:`OSError` when the write fails; the old file is then untouched and
    the temporary file removed (a process killed mid-write may leave a ``.<name>.*.tmp`` beside it).
    """
    target = Path(path)
    tmp = _written(target, data, mode)
    try:
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _sync_folder(target.parent)


def create_once(path: str | Path, data: bytes, mode: int = 0o600) -> bytes:
    """Create ``path`` holding ``data`` (file mode ``mode``, durably) unless it exists; returns what it holds.

    Processes creating the same file at once agree: one's bytes are linked into place whole and every other
    reads them, so nobody ever sees part of the file. The folder must exist."""
    target = Path(path)
    tmp = _written(target, data, mode)
    try:
        os.link(tmp, target)  # fails, rather than replaces, when another process was first
    except FileExistsError:
        _sync_folder(target.parent)  # the first one's file must outlive a power loss before we use it too
        return target.read_bytes()
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
            raise
        return _create_exclusive(target, data, mode)  # a file system without hard links
    finally:
        tmp.unlink(missing_ok=True)
    _sync_folder(target.parent)
    return data


def _create_exclusive(target: Path, data: bytes, mode: int) -> bytes:
    """:func:`create_once` where files cannot be linked: created exclusively and written in place (a process
    starting at that very moment may then read it short, and fail rather than use it)."""
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        return target.read_bytes()
    try:
        _write_all(fd, data)
    finally:
        os.close(fd)
    _sync_folder(target.parent)
    return data


def remove_leftovers(path: str | Path) -> None:
    """Remove the temporary files a process killed while writing ``path`` may have left beside it (one left
    by :func:`create_once` is a second name for the file's bytes)."""
    target = Path(path)
    for leftover in target.parent.glob(f".{target.name}.*.tmp"):
        leftover.unlink(missing_ok=True)


def _written(target: Path, data: bytes, mode: int) -> Path:
    """A new temporary file beside ``target`` holding ``data``, fsynced."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        try:
            os.fchmod(fd, mode)
            _write_all(fd, data)
        finally:
            os.close(fd)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.fsync(fd)


def _sync_folder(folder: Path) -> None:
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
