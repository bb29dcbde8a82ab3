"""Development mode: one simulated TDX platform per data directory, and a local PCS stand-in serving it."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from pathlib import Path

import httpx
import uvicorn

from atlas_log.testing.simulate import SimulatedPlatform
from atlas_log_server.attest.pcs_standin import Source, create_standin_app, simulated_source


def load_or_create_platform(folder: Path) -> SimulatedPlatform:
    """The platform saved in ``folder``, or a new one saved there (safe when several processes race)."""
    if (folder / "platform.json").exists():
        return SimulatedPlatform.load(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / ".create.lock"
    try:
        fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        deadline = time.monotonic() + 30
        while not (folder / "platform.json").exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"another process is creating {folder} and has not finished") from None
            time.sleep(0.05)
        return SimulatedPlatform.load(folder)
    os.close(fd)
    platform = SimulatedPlatform.create()
    platform.save(folder)
    return platform


_STANDIN_THREAD = "pcs-standin"


class _QuietStandin(logging.Filter):
    """Drops the stand-in's own uvicorn lines below warning ("Uvicorn running on http://127.0.0.1:<its port>"):
    they share the server's logger and would read as the log server's own."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or record.threadName != _STANDIN_THREAD


_quiet_standin = _QuietStandin()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_standin(sources: dict[str, Source]) -> str:
    """Serve a PCS stand-in on a free loopback port from a daemon thread; return its base URL when it answers."""
    port = _free_port()
    logging.getLogger("uvicorn.error").addFilter(_quiet_standin)
    # No log configuration and no level: uvicorn would install its own handlers and levels process-wide, and
    # the server's uvicorn lines would bypass its formatter, or vanish.
    config = uvicorn.Config(
        create_standin_app(sources), host="127.0.0.1", port=port, log_config=None, log_level=None, access_log=False
    )
    threading.Thread(target=uvicorn.Server(config).run, name=_STANDIN_THREAD, daemon=True).start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            httpx.get(url + "/sgx/certification/v4/rootcacrl", timeout=1)
            return url
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError("the local PCS stand-in did not start")


def start_simulated_pcs(platform: SimulatedPlatform) -> str:
    return start_standin({"": simulated_source(platform)})
