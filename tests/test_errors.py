"""Every problem type the code can answer with is documented in the README's table."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

from atlas_log.checkpoint import Checkpoint, frozen_checkpoint, sign_checkpoint
from atlas_log.merkle import EMPTY_ROOT
from atlas_log.note import Signer
from atlas_log_server.api.problems import problem_response, status_of
from atlas_log_server.db.repository import StorageError
from atlas_log_server.errors import Gone, ServerError
from atlas_log_server.log.last_signed import RecordRefused
from atlas_log_server.log.sequencer import LogFrozen, Overloaded, QuoteReused
from atlas_log_server.log.signer import SignerUnavailable, SigningRefused

ROOT = Path(__file__).resolve().parent.parent
_MAKERS = {
    *("InvalidRequest", "Unauthorized", "Forbidden", "NotFound", "RequestTimeout", "Conflict", "Gone", "TooLarge"),
    *("Rejected", "RateLimited", "Internal", "Unavailable", "ServerError", "problem"),
    *("_reject", "SubmissionError", "bad", "_unauthorized"),
    "__init__",  # a domain member of the family names its slug where it calls ServerError's constructor
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


def test_domain_errors_are_members_of_the_family() -> None:
    """Domain code raises the family's members itself: the API edge maps each to its problem unchanged."""
    cases: list[tuple[ServerError, int, str, int | None]] = [
        (Overloaded("too many entries waiting to be sequenced"), 503, "overloaded", 1),
        (QuoteReused(7), 409, "quote-reused", None),
        (SignerUnavailable("the external signer exited"), 503, "signer-unavailable", 5),
        (SigningRefused("the database was rolled back"), 503, "signing-refused", 60),
        (RecordRefused("the record is unreadable"), 503, "signing-refused", 60),
        (StorageError("tile 0/3 is missing from storage"), 500, "internal-error", None),
    ]
    for error, status, slug, retry_after in cases:
        assert isinstance(error, ServerError), error
        assert (status_of(error), error.slug, error.retry_after) == (status, slug, retry_after), error
    reused = json.loads(problem_response(QuoteReused(7)).body)
    assert "already attests entry 7" in reused["detail"] and "tee.keyAttestationEntry" in reused["detail"]


def test_a_storage_failure_does_not_tell_the_client_its_internals() -> None:
    error = StorageError("tile 0/3 is missing from storage")
    assert "tile 0/3" in str(error)  # for the log
    body = json.loads(problem_response(error).body)
    assert body["detail"] == "the server failed to handle this request" and "tile" not in json.dumps(body)


def test_a_frozen_log_names_its_successor() -> None:
    signer = Signer.generate("atlas-log.localhost/old")
    successor = Signer.generate("atlas-log.localhost/new").verifier.vkey
    final = frozen_checkpoint(Checkpoint(signer.name, 0, EMPTY_ROOT), "https://new.example", successor)
    error = LogFrozen(sign_checkpoint(final, signer), signer.verifier)
    assert isinstance(error, Gone) and status_of(error) == 410 and error.slug == "log-frozen"
    assert error.detail == (
        f"this log is frozen and accepts no entries; its successor is https://new.example (key {successor})"
    )
    bare = frozen_checkpoint(Checkpoint(signer.name, 0, EMPTY_ROOT), None, None)
    plain = LogFrozen(sign_checkpoint(bare, signer), signer.verifier)
    assert plain.detail == "this log is frozen and accepts no entries"


def test_the_family_knows_neither_http_nor_the_database() -> None:
    tree = ast.parse((ROOT / "server/atlas_log_server/errors.py").read_text())
    imported = {
        name
        for node in ast.walk(tree)
        for name in (
            [a.name for a in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
            if isinstance(node, ast.ImportFrom)
            else []
        )
    }
    forbidden = ("atlas_log_server", "fastapi", "starlette", "asyncpg", "sqlalchemy")
    assert not [m for m in imported if m.split(".")[0] in forbidden], imported
