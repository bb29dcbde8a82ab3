"""The signer's durable record of the last checkpoint it signed, kept outside the database.

A database can go back in time (restored from a backup, failed over to a lagging replica, migrated down); the
key does not forget what it signed. The record lives beside the key (``<key file>.last-signed``, also for an
external signer) so that a server whose database is behind it refuses to sign: signing there could sign a
second tree of a size the log already signed (RFC 9162 §2.1.4 / C2SP tlog-checkpoint: one tree per size).

The record holds two tree heads:

* ``committed``: the newest checkpoint that may have been handed out (it reached the database);
* ``signed``: the newest checkpoint signed. It is written *before* the batch commits (sign → record →
  commit → mark committed), so it runs ahead of ``committed`` by one batch while that batch commits.

A database equal to ``signed`` is current. A database equal to ``committed`` while ``signed`` is ahead (the
record is *pending*) is refused: the key never signs a second tree of a size it signed, pending or not. From the
commit on, the pending checkpoint is the database's state (``/checkpoint``, other workers and the witness
publisher serve it before it is marked committed), so a database at the pending batch's base is either one that
never committed it (the server stopped, or lost the database, between signing and committing) or one that
committed it and was then restored or failed over to an older state; nothing tells the two apart. A server that
knows its batch cannot have committed (it failed before its COMMIT was sent) takes the signature back itself
(``withdraw``) before the tree-state lock is released; only the operator can release any other pending
checkpoint (``atlas-log-server release-pending``). Anything else is refused. ``freeze`` records ``frozen`` with
the final tree before the database commits it; a frozen record refuses every later tree. Writes are atomic
(temp file, fsync, rename, fsync of the folder) and serialised between processes that share the key folder by
``flock`` on ``<record>.lock``.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from atlas_log._encoding import b64decode, b64encode
from atlas_log.errors import FormatError
from atlas_log.files import write_atomic
from atlas_log.merkle import HASH_SIZE
from atlas_log_server.errors import Unavailable

RECORD_SUFFIX = ".last-signed"


class RecordRefused(Unavailable):
    """The database is inconsistent with the signer's record (or the record is unreadable): writes are refused
    until the operator acts (the message says how). ``pending``: the database is at the base of a checkpoint
    signed but not known to have committed, which the process that signed it may yet commit."""

    def __init__(self, detail: str, *, pending: bool = False) -> None:
        super().__init__("signing-refused", detail, retry_after=60)
        self.pending = pending


@dataclass(frozen=True, slots=True)
class TreeHead:
    """A tree size and its root hash."""

    size: int
    root: bytes

    def to_json(self) -> dict[str, object]:
        return {"size": self.size, "root": b64encode(self.root)}

    @classmethod
    def from_json(cls, value: object) -> TreeHead:
        if not isinstance(value, dict) or not isinstance(value.get("size"), int) or value["size"] < 0:
            raise ValueError("a tree head is {size, root}")
        try:
            root = b64decode(str(value.get("root")), "root")
        except FormatError as exc:
            raise ValueError(str(exc)) from exc
        if len(root) != HASH_SIZE:
            raise ValueError("a root hash is 32 bytes")
        return cls(value["size"], root)


@dataclass(frozen=True, slots=True)
class SignedRecord:
    """What one key has signed: see the module docstring. ``key`` is the verifier key it is for."""

    key: str
    committed: TreeHead
    signed: TreeHead
    frozen: bool = False  # a final checkpoint of ``committed`` was signed: nothing may follow it

    @property
    def pending(self) -> bool:
        return self.signed != self.committed

    def encode(self) -> bytes:
        body: dict[str, object] = {
            "key": self.key,
            "committed": self.committed.to_json(),
            "signed": self.signed.to_json(),
        }
        if self.frozen:
            body["frozen"] = True
        return json.dumps(body, sort_keys=True).encode() + b"\n"

    @classmethod
    def decode(cls, data: bytes) -> SignedRecord:
        """Parse a record; raises :class:`ValueError` when it is not one."""
        try:
            obj = json.loads(data)
            if not isinstance(obj, dict) or not isinstance(obj.get("key"), str):
                raise ValueError("not a record")
            frozen = obj.get("frozen", False)
            if not isinstance(frozen, bool):
                raise ValueError("frozen is true or false")
            committed, signed = TreeHead.from_json(obj.get("committed")), TreeHead.from_json(obj.get("signed"))
            record = cls(obj["key"], committed, signed, frozen)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(str(exc)) from exc
        if record.signed.size < record.committed.size:
            raise ValueError("the signed tree is older than the committed one")
        return record


def check_database(record: SignedRecord | None, database: TreeHead, where: Path) -> None:
    """Raise :class:`RecordRefused` unless the key may sign a successor of ``database``'s tree.

    Pure: the record (``None``: this key has signed nothing that was recorded) against the database's tree.
    The message says what happened and how to recover; ``where`` names the record file in it.
    """
    if record is not None and record.frozen:
        raise RecordRefused(
            f"this log was frozen at size {record.committed.size} (its final checkpoint is recorded in {where}) "
            "and signs no later tree, whatever its database says now (a migration down and up drops the "
            "database's frozen state); its successor takes new entries"
        )
    if record is None or database == record.signed:
        return
    last = record.signed  # the newest tree this log may have handed out
    if record.pending and database == record.committed:
        raise RecordRefused(
            f"the database holds the tree of size {database.size}, but this log then signed a tree of size "
            f"{last.size} (recorded in {where}) and was not told whether its batch committed: the server stopped, "
            "or lost the database, between signing and committing, or the database committed it and was then "
            "restored from a backup or failed over to a lagging replica. Once committed, that checkpoint was "
            "served, and signing now could sign a second, different tree of that size, so this server refuses "
            f"writes (reads keep working). Recover by rolling the database forward to tree size {last.size} "
            "(restore a newer backup, promote an up-to-date replica: the server then continues), or freeze this "
            f"log (`atlas-log-server freeze`, which signs its final checkpoint at size {last.size}) and start a "
            "successor. Only if the database has not been restored or failed over since that batch (so it cannot "
            "have committed), run `atlas-log-server release-pending` to take the unsent checkpoint back",
            pending=True,
        )
    if database.size < record.committed.size:
        raise RecordRefused(
            f"the database holds a tree of size {database.size}, but this log already signed a tree of size "
            f"{last.size} (recorded in {where}): the database was rolled back (restored from a backup, failed "
            "over to a lagging replica, or migrated down). Signing now could sign a second, different tree of "
            f"a size already signed, so this server refuses writes (reads keep working). Recover by rolling "
            f"the database forward to tree size {last.size} or beyond (restore a newer backup, promote an "
            "up-to-date replica), or freeze this log (`atlas-log-server freeze`, which signs its final "
            "checkpoint at the recorded size) and start a successor. A new, empty log needs its own origin and key"
        )
    if database.size > record.signed.size:
        raise RecordRefused(
            f"the database holds a tree of size {database.size}, ahead of the last checkpoint recorded in {where} "
            f"(size {record.signed.size}), and its checkpoints do not include that tree: another server signs "
            "for this database with a key folder of its own, or the database is not this log's. Every server "
            "of one log must share one key folder; this server refuses writes"
        )
    raise RecordRefused(
        f"the database's tree of size {database.size} is not one this log signed (recorded in {where}: size "
        f"{record.committed.size}, then {record.signed.size}): the database is not this log's, or was rolled back and "
        "written again; this server refuses writes. Serve the log's own database, or freeze this log and "
        "start a successor"
    )


class LastSignedFile:
    """The record file of one key (``<key>.last-signed``), shared by every process using that key folder."""

    def __init__(self, path: Path, key: str) -> None:
        self.path = path
        self.key = key

    @classmethod
    def beside(cls, key_path: Path, key: str) -> LastSignedFile:
        return cls(key_path.with_name(key_path.name + RECORD_SUFFIX), key)

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the record's lock (blocking): read-check-write sequences of all processes serialise here."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise self._unwritable(exc) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    def read(self) -> SignedRecord | None:
        """The record for this key, or ``None`` when there is none yet (or it is for a replaced key)."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._unwritable(exc) from exc
        try:
            record = SignedRecord.decode(data)
        except ValueError as exc:
            # Never guess: an unreadable record could hide a rollback.
            raise RecordRefused(f"the signer's record {self.path} is unreadable ({exc}); restore it") from exc
        return record if record.key == self.key else None

    def write(self, record: SignedRecord) -> None:
        """Replace the record atomically and durably (temp file, fsync, rename, fsync of the folder)."""
        try:
            write_atomic(self.path, record.encode())
        except OSError as exc:
            raise self._unwritable(exc) from exc

    def release_pending(self, database: TreeHead) -> TreeHead:
        """The operator's answer to a pending record over a database at its base: the pending batch never
        committed (the database was neither restored nor failed over since). Takes the pending checkpoint back
        and returns its tree; raises :class:`RecordRefused` unless the record is pending over ``database``."""
        with self.locked():
            found = self.read()
            if found is None or found.frozen or not found.pending or found.committed != database:
                raise RecordRefused(
                    f"the signer's record {self.path} holds no pending checkpoint over the database's tree of "
                    f"size {database.size}: there is nothing to release"
                )
            self.write(SignedRecord(found.key, found.committed, found.committed))
            return found.signed

    def _unwritable(self, exc: OSError) -> RecordRefused:
        return RecordRefused(
            f"the signer's record {self.path} cannot be used ({exc}); it must be on writable, durable storage "
            "beside the key (the key's folder), shared by every server of the log"
        )
