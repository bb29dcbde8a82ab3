from __future__ import annotations

import json
from pathlib import Path

import pytest

from atlas_log.checkpoint import Checkpoint, sign_checkpoint
from atlas_log.errors import FormatError, InconsistentLogError, SignatureError
from atlas_log.merkle import EMPTY_ROOT, RootHash
from atlas_log.note import Signer
from atlas_log.trusted_state import TrustedState, verify_advance
from tests import reference

ORIGIN = "monitor.example/log"
SIGNER = Signer.generate(ORIGIN)
LEAVES = [reference.leaf(bytes([i])) for i in range(20)]


def note(n: int, leaves: list[bytes] = LEAVES) -> bytes:
    root = reference.mth(leaves[:n]) if n else EMPTY_ROOT
    return sign_checkpoint(Checkpoint(ORIGIN, n, RootHash(root)), SIGNER)


def test_advance_accepts_extensions() -> None:
    cp = verify_advance(SIGNER.verifier, note(5), note(12), reference.proof(5, LEAVES[:12]))
    assert cp.size == 12
    assert verify_advance(SIGNER.verifier, note(0), note(3), []).size == 3
    assert verify_advance(SIGNER.verifier, note(4), note(4), []).size == 4


def test_fork_rollback_and_bad_proof_raise_with_evidence() -> None:
    forked = [*LEAVES[:2], reference.leaf(b"evil"), *LEAVES[3:]]
    with pytest.raises(InconsistentLogError) as e:
        verify_advance(SIGNER.verifier, note(5), note(12, forked), reference.proof(5, forked[:12]))
    assert e.value.old_checkpoint == note(5) and e.value.new_checkpoint == note(12, forked)
    assert e.value.proof == reference.proof(5, forked[:12])
    assert e.value.kind == "proof"
    with pytest.raises(InconsistentLogError, match="rollback") as e:
        verify_advance(SIGNER.verifier, note(12), note(5), [])
    assert e.value.kind == "rollback"
    with pytest.raises(InconsistentLogError, match="two different roots") as e:
        verify_advance(SIGNER.verifier, note(7), note(7, forked), [])
    assert e.value.kind == "fork"


def test_foreign_signature_is_not_evidence() -> None:
    other = Signer.generate(ORIGIN)
    with pytest.raises(SignatureError):
        verify_advance(SIGNER.verifier, note(5), sign_checkpoint(Checkpoint(ORIGIN, 6, RootHash(bytes(32))), other), [])


def test_trusted_state_persists_and_refuses_rollback(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    ts = TrustedState(SIGNER.verifier, path)
    ts.advance(note(3), [])
    ts.advance(note(9), reference.proof(3, LEAVES[:9]))
    again = TrustedState(SIGNER.verifier, path)
    assert again.size == 9
    with pytest.raises(InconsistentLogError):
        again.advance(note(4), [])
    assert TrustedState(SIGNER.verifier, path).size == 9
    path.write_text(json.dumps({"verifierKey": "x", "checkpoint": ""}))
    with pytest.raises(FormatError):
        TrustedState(SIGNER.verifier, path)
