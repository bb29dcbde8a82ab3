"""The address a server listens on, claimed before anything else starts: a busy port is one clear error, not
a failure after keys were generated, the database migrated and the banner printed."""

from __future__ import annotations

import errno
import socket

from atlas_log_server.diagnosis import OperatorError


class AddressUnavailable(OperatorError):
    """The server cannot listen where it was told to; the message says why and how to choose another."""


def unavailable(host: str, port: int, exc: OSError) -> AddressUnavailable:
    """The operator's reading of a failed bind of ``host``:``port``."""
    if exc.errno == errno.EADDRINUSE:
        other = port + 1 if port < 65535 else 8081
        return AddressUnavailable(
            f"cannot listen on {host}: port {port} is in use (another server?); "
            f"choose another port with --port or ATLAS_PORT (with make run: ATLAS_PORT={other} make run)"
        )
    if exc.errno == errno.EACCES:
        return AddressUnavailable(
            f"cannot listen on {host}: port {port} needs privileges this user lacks; "
            "choose a port from 1024 up with --port or ATLAS_PORT"
        )
    if exc.errno == errno.EADDRNOTAVAIL or isinstance(exc, socket.gaierror):
        return AddressUnavailable(
            f"cannot listen on {host} (port {port}): it is not an address of this machine; "
            "choose another with --host or ATLAS_HOST"
        )
    return AddressUnavailable(
        f"cannot listen on {host}, port {port}: {exc.strerror or exc}; "
        "choose another address with --host/--port or ATLAS_HOST/ATLAS_PORT"
    )


def claim(host: str, port: int) -> socket.socket:
    """A socket bound to ``host``:``port`` (port 0: a free one); the server listens on it when it starts, so
    until then a client is refused rather than left waiting. Raises :class:`AddressUnavailable`."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        # As uvicorn binds: a restarted server need not wait for the last one's connections to time out.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise unavailable(host, port, exc) from exc
    return sock
