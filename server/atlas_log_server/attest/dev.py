"""Development mode: one simulated TDX platform and one simulated GPU per data directory, and the local PCS
and RIM service stand-ins serving them."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import TypeVar

import httpx
import uvicorn
from starlette.applications import Starlette

from atlas_log.testing.simulate import SimulatedPlatform
from atlas_log.testing.simulated_gpu import SimulatedGpu
from atlas_log_server.attest.ocsp_standin import create_ocsp_standin_app
from atlas_log_server.attest.pcs_standin import Source, create_standin_app, simulated_source
from atlas_log_server.attest.rim_standin import RIM_PATH, create_rim_standin_app, simulated_rims

_Simulated = TypeVar("_Simulated", SimulatedPlatform, SimulatedGpu)


def _load_or_create(
    folder: Path, saved: str, lock_name: str, load: Callable[[Path], _Simulated], create: Callable[[], _Simulated]
) -> _Simulated:
    """What ``folder/saved`` holds, or a new one saved there; of processes that race, one creates it (the
    holder of ``lock_name``, created exclusively) and the others wait for the file and load it."""
    if (folder / saved).exists():
        return load(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / lock_name
    try:
        fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        deadline = time.monotonic() + 30
        while not (folder / saved).exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"another process is creating {folder / saved} and has not finished") from None
            time.sleep(0.05)
        return load(folder)
    os.close(fd)
    made = create()
    made.save(folder)
    return made


def load_or_create_platform(folder: Path) -> SimulatedPlatform:
    """The platform saved in ``folder``, or a new one saved there (safe when several processes race)."""
    return _load_or_create(folder, "platform.json", ".create.lock", SimulatedPlatform.load, SimulatedPlatform.create)


def load_or_create_gpu(folder: Path) -> SimulatedGpu:
    """The simulated GPU saved in ``folder``, or a new one saved there (safe when several processes race).
    It may share the platform's folder: each has its own file and lock."""
    return _load_or_create(folder, "gpu.json", ".gpu.create.lock", SimulatedGpu.load, SimulatedGpu.create)


_STANDIN = "-standin"  # the end of every stand-in's thread name


class _QuietStandin(logging.Filter):
    """Drops the stand-in's own uvicorn lines below warning ("Uvicorn running on http://127.0.0.1:<its port>"):
    they share the server's logger and would read as the log server's own."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or not (record.threadName or "").endswith(_STANDIN)


_quiet_standin = _QuietStandin()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(app: Starlette, thread: str, probe: str, what: str) -> str:
    """Serve ``app`` on a free loopback port from a daemon thread; return its base URL once ``probe`` answers."""
    port = _free_port()
    logging.getLogger("uvicorn.error").addFilter(_quiet_standin)
    # No log configuration and no level: uvicorn would install its own handlers and levels process-wide, and
    # the server's uvicorn lines would bypass its formatter, or vanish.
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, log_level=None, access_log=False)
    threading.Thread(target=uvicorn.Server(config).run, name=thread, daemon=True).start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            httpx.get(url + probe, timeout=1)
            return url
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError(f"the local {what} did not start")


def start_standin(sources: dict[str, Source]) -> str:
    """Serve a PCS stand-in on a free loopback port from a daemon thread; return its base URL when it answers."""
    return _serve(create_standin_app(sources), "pcs-standin", "/sgx/certification/v4/rootcacrl", "PCS stand-in")


def start_simulated_pcs(platform: SimulatedPlatform) -> str:
    return start_standin({"": simulated_source(platform)})


def start_simulated_rim_service(gpu: SimulatedGpu) -> str:
    """Serve the simulated GPU's driver and VBIOS RIMs like NVIDIA's RIM service, on a free loopback port from a
    daemon thread; return its base URL (RIMs at ``<url>/v1/rim/<id>``) when it answers."""
    return _serve(create_rim_standin_app(simulated_rims([gpu])), "rim-standin", f"{RIM_PATH}/ids", "RIM stand-in")


def start_simulated_ocsp_service(gpu: SimulatedGpu, revoked: Collection[int] = ()) -> str:
    """Answer OCSP requests for the certificates the simulated GPU's CAs issue (its siblings' included) like
    NVIDIA's OCSP service, on a free loopback port from a daemon thread; return its URL when it answers. The
    serials in ``revoked`` (read at each request) are answered revoked."""
    url = _serve(create_ocsp_standin_app([gpu], revoked=revoked), "ocsp-standin", "/healthz", "OCSP stand-in")
    return url.rstrip("/") + "/"
