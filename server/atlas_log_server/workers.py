"""Several server processes on one address, each with its own listening socket (``SO_REUSEPORT``).

With one shared listening socket, whichever process wakes first accepts a burst of connections, and a
client that opens its connections at once can find most of them on one process while the other idles.
With one socket per process the kernel spreads connections over the processes by their address hash.
The supervisor binds the sockets (so a busy address fails at once, in the foreground), starts one process
per socket, restarts a process that dies, and stops them all on SIGINT or SIGTERM.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import time
from multiprocessing.process import BaseProcess
from typing import Any

from atlas_log_server.metrics import forget_worker

_log = logging.getLogger(__name__)

RESTART_DELAY_S = 1.0
STOP_TIMEOUT_S = 10.0


def bind_sockets(host: str, port: int, count: int) -> list[socket.socket]:
    """``count`` listening sockets on one address; raises :class:`OSError` when the address is taken.

    A probe bind without ``SO_REUSEPORT`` comes first: it fails on any socket already bound there, so a
    second server started by mistake cannot silently join the first one's group.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
        port = probe.getsockname()[1]  # port 0: every socket takes the one the probe got
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(family, socket.SOCK_STREAM)
            sockets.append(s)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            s.bind((host, port))
            s.listen(2048)
            s.set_inheritable(True)
    except OSError:
        for s in sockets:
            s.close()
        raise
    return sockets


def _worker(sock: socket.socket, app: str, config: dict[str, Any]) -> None:
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, factory=True, **config))
    server.run(sockets=[sock])


def supervise(app: str, sockets: list[socket.socket], config: dict[str, Any]) -> int:
    """Run ``app`` (an ASGI factory, ``module:function``) in one process per socket until signalled."""
    ctx = multiprocessing.get_context("spawn")
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    previous = {signum: signal.signal(signum, stop) for signum in (signal.SIGINT, signal.SIGTERM)}

    def start(sock: socket.socket) -> BaseProcess:
        p = ctx.Process(target=_worker, args=(sock, app, config), name="atlas-log-worker")
        p.start()
        return p

    procs = [start(s) for s in sockets]
    try:
        while not stopping:
            time.sleep(0.2)
            for i, p in enumerate(procs):
                if not p.is_alive() and not stopping:
                    _log.error("worker %d (pid %s) exited with %s; restarting it", i, p.pid, p.exitcode)
                    if p.pid is not None:
                        forget_worker(p.pid)
                    time.sleep(RESTART_DELAY_S)
                    procs[i] = start(sockets[i])
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for p in procs:
            p.join(max(0.0, deadline - time.monotonic()))
            if p.is_alive():
                p.kill()
                p.join()
        for s in sockets:
            s.close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0
