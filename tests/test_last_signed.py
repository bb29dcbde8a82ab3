"""The signer's durable record of what it signed: shared by processes, atomic, and strict about rollbacks."""

from __future__ import annotations

import multiprocessing
import multiprocessing.synchronize
import os
from pathlib import Path

import pytest

from atlas_log.checkpoint import Checkpoint
from atlas_log.merkle import RootHash
from atlas_log.note import Signer
from atlas_log_server.log.last_signed import LastSignedFile, RecordRefused, SignedRecord, TreeHead, check_database
from atlas_log_server.log.signer import CheckpointSigner, SigningRefused
from tests import reference

ORIGIN = "atlas-log.localhost/dev"
LEAVES = [reference.leaf(bytes([i])) for i in range(16)]
OTHER = [reference.leaf(bytes([100 + i])) for i in range(16)]  # a different history


def cp(n: int, leaves: list[bytes] = LEAVES) -> Checkpoint:
    return Checkpoint(ORIGIN, n, RootHash(reference.mth(leaves[:n])))


def proof(m: int, n: int, leaves: list[bytes] = LEAVES) -> list[bytes]:
    return list(reference.proof(m, leaves[:n])) if m else []


def _signer(path: Path, key: Signer) -> CheckpointSigner:
    return CheckpointSigner(key, LastSignedFile.beside(path, key.verifier.vkey))


def test_a_rolled_back_tree_is_refused_and_a_pending_batch_only_released_by_the_operator(tmp_path: Path) -> None:
    key = Signer.generate(ORIGIN)
    signer = _signer(tmp_path / "log.key", key)
    assert signer.adopt(cp(0)) is None
    signer.sign(cp(0), cp(3), proof(0, 3))
    signer.committed(cp(3))
    signer.sign(cp(3), cp(5), proof(3, 5))  # the process dies here, before or after the batch commits
    restarted = _signer(tmp_path / "log.key", key)
    # Size 5 may have committed and been served before the database lost it: not even size 4 is signed.
    assert "not told whether its batch committed" in (restarted.adopt(cp(3)) or "")
    with pytest.raises(SigningRefused, match="release-pending"):
        restarted.sign(cp(3), cp(4), proof(3, 4))
    # The operator knows the database was neither restored nor failed over: the batch never committed.
    record = LastSignedFile.beside(tmp_path / "log.key", key.verifier.vkey)
    with pytest.raises(RecordRefused, match="nothing to release"):
        record.release_pending(TreeHead(4, cp(4).root_hash))
    assert record.release_pending(TreeHead(3, cp(3).root_hash)) == TreeHead(5, cp(5).root_hash)
    with pytest.raises(RecordRefused, match="nothing to release"):
        record.release_pending(TreeHead(3, cp(3).root_hash))
    assert restarted.adopt(cp(3)) is None
    restarted.sign(cp(3), cp(4), proof(3, 4))
    restarted.committed(cp(4))
    # Now the database comes back at size 3 (a backup): size 4 was handed out, so 3 is a rollback.
    assert "rolled back" in (restarted.adopt(cp(3)) or "")
    fork = LEAVES[:3] + OTHER[3:]  # a valid extension of size 3 with another fourth entry
    with pytest.raises(SigningRefused, match="already signed a tree of size 4"):
        restarted.sign(cp(3), cp(4, fork), proof(3, 4, fork))
    with pytest.raises(SigningRefused, match="not one this log signed"):
        restarted.sign(cp(4, OTHER), cp(5, OTHER), proof(4, 5, OTHER))
    # A new key has signed nothing: its record starts afresh (keygen --yes replaces the key).
    assert _signer(tmp_path / "log.key", Signer.generate(ORIGIN)).adopt(cp(0)) is None


def test_the_record_is_checked_before_every_signature() -> None:
    record = SignedRecord("k", TreeHead(3, bytes(32)), TreeHead(5, bytes([1]) * 32))
    where = Path("/keys/log.key.last-signed")
    check_database(record, TreeHead(5, bytes([1]) * 32), where)
    check_database(None, TreeHead(9, bytes(32)), where)
    for size, root, says in [
        (3, bytes(32), "not told whether"),  # the pending tree's base: it may have committed and been lost
        (2, bytes(32), "already signed a tree of size 5"),  # the newest tree that may have been handed out
        (5, bytes(32), "not one"),
        (6, bytes(32), "ahead"),
    ]:
        with pytest.raises(RecordRefused, match=says) as caught:
            check_database(record, TreeHead(size, root), where)
        assert str(where) in str(caught.value)
    assert SignedRecord.decode(record.encode()) == record
    final = SignedRecord("k", TreeHead(5, bytes(32)), TreeHead(5, bytes(32)), frozen=True)
    assert SignedRecord.decode(final.encode()) == final
    with pytest.raises(RecordRefused, match="frozen at size 5"):
        check_database(final, TreeHead(5, bytes(32)), where)  # not even its own tree: nothing follows it
    for bad in (
        b"",
        b"{}",
        final.encode().replace(b"true", b"1"),
        b'{"key": "k", "committed": {"size": 1, "root": "AA=="}, "signed": {"size": 1}}',
    ):
        with pytest.raises(ValueError):
            SignedRecord.decode(bad)


def test_a_committed_batch_lost_before_it_was_marked_is_not_signed_again(tmp_path: Path) -> None:
    """The signer never signs two different trees of one size. The sequencer signs and records a batch, commits
    it, and only then (in a worker thread, the event loop free) marks it committed in the record. From the
    commit on, the checkpoint is the database's state: GET /checkpoint (this process or another worker) and the
    witness publisher serve it. A crash before the mark, then a database restored to the batch's base (a
    backup, a lagging replica), leaves record.committed == database: check_database takes it for a batch that
    never committed, and the signer signs a second, different tree of the size it already handed out."""
    key = Signer.generate("atlas-log.localhost/dev")
    signer = CheckpointSigner(key, LastSignedFile.beside(tmp_path / "log.key", key.verifier.vkey))
    assert signer.adopt(cp(0)) is None
    signer.sign(cp(0), cp(3), proof(0, 3))
    signer.committed(cp(3))
    handed_out = signer.sign(cp(3), cp(5), proof(3, 5))
    # The batch commits: the database's state is now size 5 and GET /checkpoint serves `handed_out`.
    # The process dies before signer.committed(cp(5)); the database is then restored to size 3.
    restarted = CheckpointSigner(key, LastSignedFile.beside(tmp_path / "log.key", key.verifier.vkey))
    refused = restarted.adopt(cp(3))
    fork = LEAVES[:3] + OTHER[3:]
    try:
        second = restarted.sign(cp(3), cp(5, fork), proof(3, 5, fork))
    except SigningRefused:
        return
    assert refused is not None, "signed two trees of size 5:\n" + handed_out.decode() + "\n" + second.decode()


def test_a_pending_batch_is_confirmed_by_its_tree_or_withdrawn_by_the_server_that_saw_it_fail(
    tmp_path: Path,
) -> None:
    key = Signer.generate(ORIGIN)
    signer = _signer(tmp_path / "log.key", key)
    assert signer.adopt(cp(2)) is None
    signer.sign(cp(2), cp(4), proof(2, 4))  # committed, then the process dies before marking it
    assert _signer(tmp_path / "log.key", key).adopt(cp(4)) is None  # the database holds it: marked committed
    record = LastSignedFile.beside(tmp_path / "log.key", key.verifier.vkey)
    assert record.read() == SignedRecord(key.verifier.vkey, TreeHead(4, cp(4).root_hash), TreeHead(4, cp(4).root_hash))
    # A batch whose transaction failed before its COMMIT was sent is taken back; the next batch signs over 4.
    signer.sign(cp(4), cp(6), proof(4, 6))
    signer.withdraw(cp(5))  # not the pending tree: nothing changes
    fork = LEAVES[:4] + OTHER[4:]
    with pytest.raises(SigningRefused, match="not told whether"):
        signer.sign(cp(4), cp(5, fork), proof(4, 5, fork))
    signer.withdraw(cp(6))
    signer.sign(cp(4), cp(5), proof(4, 5))
    signer.committed(cp(5))
    assert record.read() == SignedRecord(key.verifier.vkey, TreeHead(5, cp(5).root_hash), TreeHead(5, cp(5).root_hash))


def test_an_unreadable_record_is_never_taken_for_no_record(tmp_path: Path) -> None:
    key = Signer.generate(ORIGIN)
    signer = _signer(tmp_path / "log.key", key)
    signer.adopt(cp(2))
    path = tmp_path / "log.key.last-signed"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert SignedRecord.decode(path.read_bytes()).signed == TreeHead(2, cp(2).root_hash)
    path.write_text("{truncated")
    with pytest.raises(SigningRefused, match="unreadable"):
        signer.sign(cp(2), cp(3), proof(2, 3))


def _append(key_path: str, skey: str, parity: int, stop: int, turn: multiprocessing.synchronize.Barrier) -> None:
    """One of two processes taking turns on one log, as the database row lock makes them: this one extends
    the tree from every size of its parity."""
    signer = _signer(Path(key_path), Signer.from_skey(skey))
    for n in range(stop):
        if n % 2 == parity:
            signer.sign(cp(n), cp(n + 1), proof(n, n + 1))
            signer.committed(cp(n + 1))
        turn.wait()


def test_processes_sharing_a_key_folder_accept_each_others_records(tmp_path: Path) -> None:
    key = Signer.generate(ORIGIN)
    ctx = multiprocessing.get_context("spawn")
    turn = ctx.Barrier(2)
    procs = [ctx.Process(target=_append, args=(str(tmp_path / "log.key"), key.skey, p, 14, turn)) for p in (0, 1)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    record = SignedRecord.decode((tmp_path / "log.key.last-signed").read_bytes())
    assert record.committed == record.signed == TreeHead(14, cp(14).root_hash)
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]


def test_a_record_that_cannot_be_used_refuses_signing_with_a_reason(tmp_path: Path) -> None:
    key = Signer.generate(ORIGIN)
    signer = _signer(tmp_path / "log.key", key)
    assert signer.adopt(cp(1)) is None
    record = tmp_path / "log.key.last-signed"
    record.unlink()
    record.mkdir()  # something in the way of the file (even root cannot write a file there)
    with pytest.raises(SigningRefused, match="writable, durable storage"):
        signer.sign(cp(1), cp(2), proof(1, 2))
    assert "writable, durable storage" in (signer.adopt(cp(1)) or "")


def test_a_key_folder_restored_from_an_older_copy_moves_forward_only_to_a_database_that_extends_it(
    tmp_path: Path,
) -> None:
    key = Signer.generate(ORIGIN)
    signer = _signer(tmp_path / "log.key", key)
    signer.adopt(cp(3))  # the record an older copy of the key folder holds
    assert "ahead" in (signer.adopt(cp(6)) or "")  # no evidence that the database passed through size 3
    assert "ahead" in (signer.adopt(cp(6), TreeHead(3, cp(3, OTHER).root_hash)) or "")  # another tree 3
    assert signer.adopt(cp(6), TreeHead(3, cp(3).root_hash)) is None  # its checkpoints hold the record's tree
    signer.sign(cp(6), cp(7), proof(6, 7))
    with pytest.raises(SigningRefused, match="rolled back"):
        signer.sign(cp(3), cp(4), proof(3, 4))
