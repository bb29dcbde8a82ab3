"""Shared fixtures: a real PostgreSQL (ATLAS_TEST_DATABASE_URL, or an embedded server), a migrated template
database, a fresh database per test, and real server processes."""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest

from atlas_log.testing.simulate import SimulatedPlatform
from atlas_log.testing.simulated_gpu import SimulatedGpu
from atlas_log_server.db import migrate

_counter = itertools.count()
ROOT_DIR = Path(__file__).resolve().parent.parent


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


async def _admin(url: str, *statements: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        for s in statements:
            await conn.execute(s)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A URL to the maintenance database of the PostgreSQL server the tests use."""
    url = os.environ.get("ATLAS_TEST_DATABASE_URL")
    if url:
        return url
    from atlas_log_server.db.embedded import EmbeddedPostgres

    # A short path: the Unix socket lives in the data folder and socket paths are limited to ~100 bytes.
    base = Path(tempfile.mkdtemp(prefix="atlas-pg-"))
    return EmbeddedPostgres(base).start()


_copies: list[str] = []  # databases made by copy_database in this test process, dropped at its end


def _administer(url: str, *statements: str) -> None:
    """Run ``statements`` on a connection of their own, in a thread of their own: a caller may be inside a
    running event loop (Playwright's sync API keeps one)."""
    worker = threading.Thread(target=asyncio.run, args=(_admin(url, *statements),))
    worker.start()
    worker.join()


def copy_database(pg_url: str, template: str, name: str) -> str:
    """A new database ``name`` copied from ``template`` (replacing one an interrupted run left), dropped when
    the test session ends; returns its URL."""
    _administer(
        pg_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}" TEMPLATE "{template}"'
    )
    _copies.append(name)
    return with_database(pg_url, name)


@pytest.fixture(scope="session")
def template_db(pg_url: str) -> Iterator[str]:
    name = f"atlas_tpl_{os.getpid()}"
    asyncio.run(_admin(pg_url, f'DROP DATABASE IF EXISTS "{name}"', f'CREATE DATABASE "{name}"'))
    url = with_database(pg_url, name)
    migrate.upgrade(url)
    yield name
    drops = [f'DROP DATABASE IF EXISTS "{copy}" WITH (FORCE)' for copy in dict.fromkeys(_copies)]
    asyncio.run(_admin(pg_url, *drops, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def db_url(pg_url: str, template_db: str) -> Iterator[str]:
    """A fresh, migrated database for one test."""
    name = f"atlas_t_{os.getpid()}_{next(_counter)}"
    asyncio.run(_admin(pg_url, f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"'))
    yield with_database(pg_url, name)
    asyncio.run(_admin(pg_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """``atlas-log-server serve`` in a real child process."""

    def __init__(
        self,
        db_url: str | None,
        data_dir: Path,
        env: dict[str, str] | None = None,
        wait: float = 60,
        args: Sequence[str] = (),
        port: int | None = None,
    ) -> None:
        self.data_dir = data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        full_env = {k: v for k, v in os.environ.items() if k != "ATLAS_DATABASE_URL"}
        # The verifiable map appends commitment entries; tests that count entries run without it unless they
        # ask for it.
        full_env.update({"ATLAS_DATA_DIR": str(data_dir), "ATLAS_MAP_INTERVAL_S": "0", **(env or {})})
        if db_url is not None:  # None: the server starts its own embedded PostgreSQL in data_dir
            full_env["ATLAS_DATABASE_URL"] = db_url
        for attempt in range(3):
            # A port found free may be taken by another test process before the server binds it: another one.
            self.port = port if port is not None else free_port()
            self.url = f"http://127.0.0.1:{self.port}"
            self.log_path = data_dir / f"server-{self.port}.log"
            self._log = self.log_path.open("wb")
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "atlas_log_server.cli", "serve", "--port", str(self.port), *args],
                env=full_env,
                stdout=self._log,
                stderr=subprocess.STDOUT,
            )
            try:
                self._wait_ready(wait)
                return
            except RuntimeError as exc:
                self._log.close()
                if port is not None or attempt == 2 or "is in use" not in str(exc):
                    raise

    def _wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server not ready in {timeout}s: {self.log_path.read_text()[-3000:]}")

    @property
    def platform(self) -> SimulatedPlatform:
        """The simulated TDX platform the server trusts (created in its data folder at first start)."""
        return SimulatedPlatform.load(self.data_dir / "simulated-tdx")

    @property
    def gpu(self) -> SimulatedGpu:
        """The simulated GPU the server trusts (its roots; its RIMs are on the server's RIM service stand-in)."""
        return SimulatedGpu.load(self.data_dir / "simulated-gpu")

    @property
    def vkey(self) -> str:
        return str(httpx.get(self.url + "/api/v1/log").json()["verifierKey"])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    s = ServerProcess(db_url, tmp_path / "data")
    yield s
    s.stop()


@pytest.fixture
def open_server(db_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    """A server that also admits entries without a TDX quote."""
    s = ServerProcess(db_url, tmp_path / "data", env={"ATLAS_ALLOW_UNATTESTED": "true"})
    yield s
    s.stop()
