"""The README's security model names, for every guarantee, the test that attacks it: each named test exists."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _section() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("## Security model")
    return text[start : text.index("\n## ", start + 1)]


def _functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}


def test_every_test_the_security_model_names_exists() -> None:
    section = _section()
    named = re.findall(r"`(tests/test_\w+\.py)((?:::\w+)?)`|`::(\w+)`", section)
    assert len(named) >= 15, "the security model names the tests behind its guarantees"
    current: Path | None = None
    for file, qualified, bare in named:
        if file:
            current = ROOT / file
            assert current.is_file(), f"{file} is named in the README's security model but does not exist"
        name = qualified.removeprefix("::") or bare
        if name:
            assert current is not None
            assert name in _functions(current), f"{current.name}::{name} is named in the README but does not exist"


def test_every_guarantee_row_names_a_test() -> None:
    rows = [line for line in _section().splitlines() if line.startswith("| ") and not line.startswith("| who")]
    assert len(rows) >= 10
    for row in rows:
        assert "`tests/test_" in row, f"a guarantee without a test: {row[:80]}"
