"""Every problem type the code can answer with is documented in the README's table."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_MAKERS = {
    *("InvalidRequest", "Unauthorized", "Forbidden", "NotFound", "RequestTimeout", "Conflict", "Gone", "TooLarge"),
    *("Rejected", "RateLimited", "Internal", "Unavailable", "ServerError", "problem"),
    *("_reject", "SubmissionError", "bad", "_unauthorized"),
}


def _slugs_in_code() -> set[str]:
    found = set()
    for folder in ("server/atlas_log_server", "client/atlas_log/submission.py"):
        paths = [ROOT / folder] if folder.endswith(".py") else list((ROOT / folder).rglob("*.py"))
        for path in paths:
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.Call):
                    continue
                f = node.func
                name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
                if name in _MAKERS:
                    found.update(
                        arg.value
                        for arg in node.args[:2]
                        if isinstance(arg, ast.Constant)
                        and isinstance(arg.value, str)
                        and re.fullmatch(r"[a-z][a-z0-9]*(-[a-z0-9]+)+|[a-z]+", arg.value)
                    )
    return found


def test_every_problem_type_is_documented() -> None:
    readme = (ROOT / "README.md").read_text()
    documented = set(re.findall(r"^\| `([a-z<>-]+)` \| \d{3} \|", readme, re.MULTILINE))
    code = _slugs_in_code() - {"tdx-"}  # the prefix of quote-rejection types, documented as tdx-<code>
    assert len(code) > 40
    assert code <= documented, sorted(code - documented)
