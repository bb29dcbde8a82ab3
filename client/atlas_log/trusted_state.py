"""Trusted state: the last checkpoint a client verified, and the rule that every newer one must extend it.

:func:`verify_advance` is the pure check. :class:`TrustedState` keeps the newest verified checkpoint in a
file (written atomically), so a client that restarts still refuses a log that rolled back or forked.
A failure raises :class:`~atlas_log.errors.InconsistentLogError` carrying both signed notes and the proof.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from atlas_log.checkpoint import Checkpoint, open_checkpoint, succession
from atlas_log.errors import FormatError, InconsistentLogError, ProofError
from atlas_log.files import write_atomic
from atlas_log.merkle import EMPTY_ROOT, verify_consistency
from atlas_log.note import Verifier

__all__ = ["TrustedState", "verify_advance"]


def verify_advance(verifier: Verifier, old: bytes | None, new: bytes, proof: Sequence[bytes]) -> Checkpoint:
    """Open ``new`` and check that it extends ``old`` (both signed notes); return the new checkpoint.

    ``proof`` is the consistency proof from ``old``'s size to ``new``'s. Rollback (a smaller size), two
    roots for one size, and a failing proof all raise :class:`InconsistentLogError`.
    """
    new_cp = open_checkpoint(new, verifier)
    if old is None:
        return new_cp
    old_cp = open_checkpoint(old, verifier)
    if new_cp.size < old_cp.size:
        raise InconsistentLogError(
            "rollback", f"rollback from size {old_cp.size} to {new_cp.size}", old, new, list(proof)
        )
    if new_cp.size == old_cp.size:
        if new_cp.root_hash != old_cp.root_hash:
            raise InconsistentLogError("fork", f"two different roots for size {new_cp.size}", old, new, list(proof))
        return new_cp
    if succession(old_cp) is not None:
        raise InconsistentLogError(
            "frozen",
            f"the log declared itself frozen at size {old_cp.size}, then signed size {new_cp.size}",
            old,
            new,
            list(proof),
        )
    if old_cp.size == 0:
        if old_cp.root_hash != EMPTY_ROOT:
            raise InconsistentLogError("empty-root", "empty checkpoint with a non-empty root", old, new, list(proof))
        return new_cp
    try:
        verify_consistency(old_cp.size, new_cp.size, proof, old_cp.root_hash, new_cp.root_hash)
    except ProofError as exc:
        raise InconsistentLogError("proof", str(exc), old, new, list(proof)) from exc
    return new_cp


class TrustedState:
    """The newest verified checkpoint of one log, optionally persisted in a JSON file."""

    def __init__(self, verifier: Verifier, path: Path | None = None) -> None:
        self.verifier = verifier
        self.path = path
        self.note: bytes | None = None
        self.checkpoint: Checkpoint | None = None
        if path is not None and path.exists():
            self._load(path)

    def _load(self, path: Path) -> None:
        try:
            obj = json.loads(path.read_text())
            if obj.get("verifierKey") != self.verifier.vkey:
                raise FormatError(f"trusted state in {path} is for another log key ({obj.get('verifierKey')})")
            note = obj["checkpoint"].encode()
        except (ValueError, KeyError, AttributeError) as exc:
            raise FormatError(f"trusted state file {path} is malformed: {exc}") from exc
        self.checkpoint = open_checkpoint(note, self.verifier)
        self.note = note

    @property
    def size(self) -> int:
        return 0 if self.checkpoint is None else self.checkpoint.size

    def advance(self, new: bytes, proof: Sequence[bytes]) -> Checkpoint:
        """Accept ``new`` if it extends the trusted checkpoint (``proof`` from our size); persist it."""
        cp = verify_advance(self.verifier, self.note, new, proof)
        # A frozen log's final checkpoint replaces the trusted one of the same size: growth after it is evidence.
        freezes = cp.size == getattr(self.checkpoint, "size", -1) and succession(cp) is not None
        if self.checkpoint is None or cp.size > self.checkpoint.size or freezes:
            self.note, self.checkpoint = new, cp
            self._save()
        return cp

    def _save(self) -> None:
        if self.path is None or self.note is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = json.dumps({"verifierKey": self.verifier.vkey, "checkpoint": self.note.decode()}, indent=2)
        write_atomic(self.path, data.encode())
