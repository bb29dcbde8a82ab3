"""What the command line shows a person: rich tables, trees and progress on a terminal, plain text when piped
(no colour, no bars, lines that do not wrap), and one-line error messages.

Nothing here decides a verdict: the commands verify, this module only renders what they proved.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

__all__ = ["Output", "add", "counted", "one_line", "render_json", "tree", "verdict_text", "when"]

_PIPED_WIDTH = 200  # a pipe has no width: wide enough that a digest and its row stay on one line


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (a message that spans lines is joined)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def counted(n: int, one: str, many: str | None = None) -> str:
    """``n`` things, in the number ``n`` takes (``counted(1, "entry", "entries")`` → ``1 entry``)."""
    return f"{n} {one if n == 1 else (many or one + 's')}"


def when(t: int | None) -> str:
    """A Unix time as ``YYYY-MM-DD HH:MM:SS UTC`` ("-" for None)."""
    return "-" if t is None else time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t))


class Output:
    """The two streams of a command: ``out`` (results) and ``err`` (progress, warnings), each a rich console
    that writes to whatever ``sys.stdout``/``sys.stderr`` are when it writes, never interprets ``[...]`` in the
    log's data as markup, and has no colour unless it writes to a terminal (or ``NO_COLOR`` is set)."""

    def __init__(self) -> None:
        self.out = self._console(stderr=False)
        self.err = self._console(stderr=True)

    @staticmethod
    def _console(stderr: bool) -> Console:
        stream = sys.stderr if stderr else sys.stdout
        tty = stream.isatty()
        return Console(
            stderr=stderr,
            markup=False,
            highlight=False,
            soft_wrap=not tty,
            width=None if tty else _PIPED_WIDTH,
            no_color="NO_COLOR" in os.environ or not tty,
        )

    @property
    def interactive(self) -> bool:
        """Whether progress may be drawn (stderr is a terminal)."""
        return self.err.is_terminal

    def line(self, text: str = "", style: str | None = None) -> None:
        self.out.print(Text(text, style=style or ""))

    def note(self, text: str, style: str | None = "dim") -> None:
        """A remark on stderr (kept out of the results a script reads)."""
        self.err.print(Text(text, style=style or ""))

    def table(self, *columns: str, title: str | None = None) -> Table:
        table = Table(*columns, title=title, title_justify="left", show_edge=False, pad_edge=False)
        for column in table.columns:
            column.overflow = "fold"
        return table

    def show(self, renderable: Table | Tree | Text) -> None:
        self.out.print(renderable)

    @contextmanager
    def progress(self, what: str, total: int | None = None) -> Iterator[Progress]:
        """A progress bar on stderr while the block runs (nothing when stderr is not a terminal); advance it
        with ``bar.update(task, completed=n, total=m)`` on the one task it holds (``bar.task_ids[0]``)."""
        bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.err,
            transient=True,
            disable=not self.interactive,
        )
        bar.add_task(what, total=total)
        with bar:
            yield bar

    @contextmanager
    def waiting(self, what: str) -> Iterator[None]:
        """A spinner on stderr while a network answer is awaited (nothing when not a terminal)."""
        if not self.interactive:
            yield
            return
        with self.err.status(what):
            yield


def verdict_text(ok: bool, text: str) -> Text:
    """A verdict word coloured by its outcome (colour only on a terminal)."""
    return Text(text, style="bold green" if ok else "bold red")


def tree(label: str) -> Tree:
    return Tree(Text(label), guide_style="dim")


def add(node: Tree, label: str, style: str | None = None) -> Tree:
    return node.add(Text(label, style=style or ""))


def render_json(value: Any) -> str:
    """Machine output: indented JSON, non-ASCII kept as is."""
    return json.dumps(value, indent=2, ensure_ascii=False)
