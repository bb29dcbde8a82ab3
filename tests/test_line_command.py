"""An external command spoken to one line at a time (atlas_log_server.line_command): answers pair with their
requests; a command that hangs, exits or answers out of step is a CommandFailed within the timeout, and is
started again for the next request."""

from __future__ import annotations

import re
import shlex
import sys
import time

import pytest

from atlas_log_server.line_command import CommandFailed, LineCommand

# Answers each line upper-cased; "hang" hangs, "twice" answers two lines, "late" a second one later, "exit" exits.
PROGRAM = """
import sys, time
for line in sys.stdin:
    word = line.strip()
    if word == "hang":
        time.sleep(60)
    if word == "exit":
        sys.exit(3)
    print(word.upper(), flush=True)
    if word == "twice":
        print("again", flush=True)
    if word == "late":
        time.sleep(0.2)
        print("again", flush=True)
"""


def _command(timeout_s: float = 0.5) -> LineCommand:
    return LineCommand(f"{sys.executable} -c {shlex.quote(PROGRAM)}", timeout_s, "the test command")


def test_answers_pair_with_their_requests() -> None:
    command = _command()
    try:
        assert command.exchange(b"one\n") == b"ONE"
        assert command.exchange(b"two\n") == b"TWO"
    finally:
        command.close()


@pytest.mark.parametrize(
    ("request_line", "message"),
    [(b"hang\n", "did not answer within 0.5 s"), (b"exit\n", "exited (status 3)")],
)
def test_a_failing_command_is_an_error_in_time_and_restarted(request_line: bytes, message: str) -> None:
    command = _command()
    try:
        started = time.monotonic()
        with pytest.raises(CommandFailed, match=re.escape(message)):
            command.exchange(request_line)
        assert time.monotonic() - started < 5
        assert command.exchange(b"after\n") == b"AFTER"  # a fresh process, in step again
    finally:
        command.close()


@pytest.mark.parametrize("request_line", [b"twice\n", b"late\n"])
def test_a_second_answer_never_pairs_with_the_next_request(request_line: bytes) -> None:
    """A second line arriving with the first is an error at once; one arriving later would be read as the answer to
    the next request, so the command is found out of step then and started again."""
    command = _command()
    try:
        try:
            assert command.exchange(request_line) == request_line.strip().upper()
        except CommandFailed as exc:
            assert "more than one line" in str(exc)
        time.sleep(0.4)
        assert command.exchange(b"after\n") == b"AFTER"
        assert command.exchange(b"next\n") == b"NEXT"
    finally:
        command.close()
