"""A long-running external command spoken to one line at a time: the interface an HSM or KMS adapter
implements for the log (its checkpoint signer, its key-encryption key).

Each request is one line on the command's stdin and its answer one line on its stdout, waited for at most
``timeout_s``. A command that does not answer in time is killed (a late answer would pair with the next
request) and started again for the next one; so is one that exits, or answers out of step.
"""

from __future__ import annotations

import os
import select
import shlex
import subprocess
import threading
import time


class CommandFailed(Exception):
    """The command did not answer (in time), is not running, or answered out of step; the message says which."""


class LineCommand:
    """One external command; :meth:`exchange` is thread-safe and blocks for at most ``timeout_s``, so callers
    run it off the event loop. ``what`` names the command in messages ("the external signer")."""

    def __init__(self, command: str, timeout_s: float, what: str) -> None:
        self.timeout_s = timeout_s
        self.what = what
        self._argv = shlex.split(command)
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = self._start()

    def _start(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(self._argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)

    def exchange(self, message: bytes) -> bytes:
        """Send one line (``message`` ends with a newline) and read one line back, stripped."""
        with self._lock:
            return self._exchange(message)

    def _exchange(self, message: bytes) -> bytes:
        proc = self._proc
        if proc is not None and proc.stdout is not None and select.select([proc.stdout], [], [], 0)[0]:
            # It said something unasked (a late second line, or its exit): that line would pair with this
            # request, so it is out of step and started again.
            self._discard()
            proc = None
        if proc is None or proc.poll() is not None:
            if proc is not None:
                self._discard()
            try:
                proc = self._proc = self._start()
            except OSError as exc:
                raise CommandFailed(f"{self.what} cannot be started: {exc}") from exc
        assert proc.stdin is not None and proc.stdout is not None
        deadline = time.monotonic() + self.timeout_s
        try:
            proc.stdin.write(message)
            line = bytearray()
            while not line.endswith(b"\n"):
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not select.select([proc.stdout], [], [], remaining)[0]:
                    self._discard()
                    raise CommandFailed(
                        f"{self.what} did not answer within {self.timeout_s:g} s; it was stopped and is started "
                        "again for the next request"
                    )
                chunk = os.read(proc.stdout.fileno(), 4096)
                if not chunk:
                    try:  # its output closed: it is exiting, give it a moment to say with what status
                        code: int | None = proc.wait(1)
                    except subprocess.TimeoutExpired:
                        code = None
                    self._discard()
                    raise CommandFailed(f"{self.what} exited (status {code}) without answering")
                line += chunk
        except OSError as exc:  # a broken pipe: it died before reading
            self._discard()
            raise CommandFailed(f"{self.what} is not running: {exc}") from exc
        if not line.endswith(b"\n") or line.count(b"\n") != 1:
            self._discard()  # more than one answer: the line protocol is out of step
            raise CommandFailed(f"{self.what} answered more than one line")
        return bytes(line).strip()

    def _discard(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.kill()
        proc.wait()
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                pipe.close()

    def close(self) -> None:
        """Close its stdin and wait for it to exit (killed after 5 s)."""
        with self._lock:
            proc = self._proc
            if proc is None:
                return
            if proc.stdin is not None:
                proc.stdin.close()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
            self._proc = None
