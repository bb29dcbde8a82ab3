"""Durable, atomic file replacement: after a crash at any moment, a reader finds the old bytes or the new.

The bytes go to a fresh temporary file in the same folder (so the rename cannot cross file systems), which is
fsynced, renamed over the target (atomic on POSIX), and then the folder is fsynced so the rename itself
survives a power loss.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["write_atomic"]


def write_atomic(path: str | Path, data: bytes, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` (file mode ``mode``) atomically and durably.

    The folder must exist. Raises :class:`OSError` when the write fails; the old file is then untouched and
    the temporary file removed (a process killed mid-write may leave a ``.<name>.*.tmp`` beside it).
    """
    target = Path(path)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        try:
            os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
