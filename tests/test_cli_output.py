"""What the command line shows (atlas_log.cli_output): piped output has no colour, no markup read into the
log's data, and lines that do not wrap; messages are one line."""

from __future__ import annotations

import sys

import pytest

from atlas_log.cli_output import Output, one_line, when


def test_piped_output_is_plain_and_unwrapped(capsys: pytest.CaptureFixture[str]) -> None:
    ui = Output()
    digest = "sha256:" + "ab" * 32
    ui.line(f"[bold]{digest}  [entry #3]  " + "x" * 100, "red")
    table = ui.table("entry", "digest")
    table.add_row("#3", digest)
    ui.show(table)
    out = capsys.readouterr().out
    assert "\x1b[" not in out  # no colour when not a terminal
    assert f"[bold]{digest}  [entry #3]  " + "x" * 100 in out  # brackets are the log's data, not markup
    assert digest in out.splitlines()[-1]  # a table row keeps its digest whole
    with ui.progress("nothing drawn", 3) as bar:
        bar.update(bar.task_ids[0], completed=3)
    assert capsys.readouterr().err == ""


def test_messages_are_one_line() -> None:
    assert one_line(ValueError("first\n  second\tthird")) == "first second third"
    assert one_line(ValueError("")) == "ValueError"
    assert when(None) == "-" and when(0) == "1970-01-01 00:00:00 UTC"


def test_counts_agree_in_number() -> None:
    from atlas_log.cli_output import counted

    assert [counted(n, "entry", "entries") for n in (0, 1, 2)] == ["0 entries", "1 entry", "2 entries"]
    assert counted(1, "edge") == "1 edge" and counted(3, "edge") == "3 edges"


# What a terminal acts on: a colour or a cleared screen (ESC), a bell, a window title (OSC), a C1 control, and
# a right-to-left override that shows what follows reversed.
HOSTILE = "model\x1b[2J\x1b]0;pwned\x07\x9b31m\u202eevil\x00"


def test_text_from_a_log_never_reaches_the_terminal_as_control(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from atlas_log.cli_output import add, inert, tree

    assert inert(HOSTILE) == "model\\x1b[2J\\x1b]0;pwned\\x07\\x9b31m\\u202eevil\\x00"
    assert inert("two\nlines\tand a tab, ünïcode") == "two\nlines\tand a tab, ünïcode"
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    for terminal in (False, True):
        monkeypatch.setattr(sys.stdout, "isatty", lambda t=terminal: t)
        ui = Output()
        ui.line(HOSTILE, "red")
        table = ui.table("entry", "name")
        table.add_row("#3", HOSTILE)
        ui.show(table)
        root = tree(HOSTILE)
        add(root, HOSTILE)
        ui.show(root)
        out = capsys.readouterr().out
        # Every escape left is one of the tool's own colours (on a terminal), never the log's text.
        assert "\x1b[2J" not in out and "\x1b]" not in out and "\x07" not in out and "\x9b" not in out, repr(out)
        assert "\u202e" not in out and "\x00" not in out, repr(out)
        assert out.count("\\x1b[2J") == 4, repr(out)
        assert ("\x1b[31m" in out) is terminal  # the tool's own colour still shows on a terminal
