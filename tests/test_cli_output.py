"""What the command line shows (atlas_log.cli_output): piped output has no colour, no markup read into the
log's data, and lines that do not wrap; messages are one line."""

from __future__ import annotations

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
