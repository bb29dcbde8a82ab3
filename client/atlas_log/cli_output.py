"""What the command line shows a person: rich tables, trees and progress on a terminal, plain text when piped
(no colour, no bars, lines that do not wrap), and one-line error messages.

Nothing here decides a verdict: the commands verify, this module only renders what they proved. Nor does any
text from a log, a file or a server reach the terminal as a control: a name in a statement is anyone's to choose.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console, ConsoleOptions, ConsoleRenderable, RenderHook, RenderResult
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.segment import Segment
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

__all__ = ["Output", "add", "counted", "inert", "one_line", "render_json", "tree", "verdict_text", "when"]

_PIPED_WIDTH = 200  # a pipe has no width: wide enough that a digest and its row stay on one line


# What a terminal acts on rather than shows: the C0 controls but tab and line feed (ESC starts colours, cursor
# moves, window titles and links), DEL, the C1 controls (0x9B is a one-byte CSI), and the bidirectional
# controls, which show the text after them reordered (a name that reads as another).
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


_LINE_FEED = re.compile("\n")


def inert(text: str, *, line: bool = False) -> str:
    """``text`` with every character a terminal would act on shown as its escape (``\\x1b``, ``\\u202e``);
    with ``line``, its line feeds too (text that must stay on its line: a name, which could otherwise print a
    line of its own making)."""
    escaped = _CONTROL.sub(_escape, text)
    return _LINE_FEED.sub(_escape, escaped) if line else escaped


def _escape(match: re.Match[str]) -> str:
    return match.group().encode("unicode_escape").decode("ascii")


class _Inert:
    """A renderable drawn as ``inner`` is, its text made :func:`inert` (the console's own control codes, which
    rich keeps apart as control segments, and its styles pass as they are)."""

    def __init__(self, inner: ConsoleRenderable) -> None:
        self.inner = inner

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for segment in console.render(self.inner, options):
            yield segment if segment.control else Segment(inert(segment.text), segment.style)


class _InertHook(RenderHook):
    def process_renderables(self, renderables: list[ConsoleRenderable]) -> list[ConsoleRenderable]:
        return [_Inert(r) for r in renderables]


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
        console = Console(
            stderr=stderr,
            markup=False,
            highlight=False,
            soft_wrap=not tty,
            width=None if tty else _PIPED_WIDTH,
            no_color="NO_COLOR" in os.environ or not tty,
        )
        console.push_render_hook(_InertHook())
        return console

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
