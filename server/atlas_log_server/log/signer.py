"""The checkpoint signer: signs only checkpoints consistent with the last one it signed (tlog-checkpoint).

The key is a file (generated on first start) or held by an external signer: a long-running command that
reads one base64 message per line on stdin and answers with one base64 Ed25519 signature per line on stdout
(the interface an HSM or KMS adapter implements). Every external signature is verified against the
configured verifier key before it is used, and waited for at most ``ATLAS_SIGNER_TIMEOUT_S``.

In both key modes the signer keeps a durable record of the last checkpoint it signed beside the key file
(:mod:`atlas_log_server.log.last_signed`) and refuses to sign over a database that went back in time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from atlas_log._encoding import b64decode, b64encode
from atlas_log.checkpoint import Checkpoint, sign_checkpoint
from atlas_log.errors import Error, FormatError, ProofError
from atlas_log.files import create_once, remove_leftovers, write_atomic
from atlas_log.merkle import verify_consistency
from atlas_log.note import NoteSignature, NoteSigner, Signer, Verifier
from atlas_log_server.config import DEFAULT_SIGNER_TIMEOUT_S, Settings
from atlas_log_server.errors import Unavailable
from atlas_log_server.line_command import CommandFailed, LineCommand
from atlas_log_server.log.last_signed import LastSignedFile, RecordRefused, SignedRecord, TreeHead, check_database


class SigningRefused(Unavailable):
    """The signer was asked to sign a checkpoint that could fork the log (the message says what to do). The
    operator must act; retrying alone will not help, so clients are asked to wait a minute. ``pending``: see
    :class:`~atlas_log_server.log.last_signed.RecordRefused`."""

    def __init__(self, detail: str, *, pending: bool = False) -> None:
        super().__init__("signing-refused", detail, retry_after=60)
        self.pending = pending


def load_or_create_key(path: Path, origin: str) -> tuple[Signer, bool]:
    """Load the signing key from ``path``, or generate one there (mode 0600). Returns (signer, created)."""
    if path.exists():
        try:
            signer = Signer.from_skey(path.read_text())
        except FormatError as exc:
            raise FormatError(f"{path}: {exc}") from exc
        if signer.name != origin:
            raise SigningRefused(f"key in {path} is for origin {signer.name!r}, not the configured {origin!r}")
        return signer, False
    signer = Signer.generate(origin)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Two processes starting at once must agree on one key, and neither may read half of the other's.
    mine = (signer.skey + "\n").encode()
    if create_once(path, mine) != mine:
        return load_or_create_key(path, origin)
    return signer, True


def replace_key(path: Path, origin: str) -> Signer:
    """Write a new key over the one in ``path`` (mode 0600, atomically): the old key is destroyed, and so is
    any copy a crash left beside it."""
    signer = Signer.generate(origin)
    remove_leftovers(path)
    write_atomic(path, (signer.skey + "\n").encode())
    return signer


class SignerUnavailable(Unavailable):
    """The external signer did not answer in time, or is not running; the next signature restarts it."""

    def __init__(self, detail: str) -> None:
        super().__init__("signer-unavailable", detail, retry_after=5)


class CommandSigner:
    """A :class:`~atlas_log.note.NoteSigner` whose key lives in an external signer process
    (:class:`~atlas_log_server.line_command.LineCommand`).

    Every signature is bounded by ``timeout_s``: a signer that does not answer in time is killed (a late
    answer would pair with the next message) and started again for the next signature. ``sign`` blocks for
    at most that long, so callers run it off the event loop.
    """

    def __init__(self, command: str, verifier: Verifier, timeout_s: float = DEFAULT_SIGNER_TIMEOUT_S) -> None:
        self._verifier = verifier
        self.timeout_s = timeout_s
        self._command = LineCommand(command, timeout_s, "the external signer")

    @property
    def name(self) -> str:
        return self._verifier.name

    @property
    def verifier(self) -> Verifier:
        return self._verifier

    def sign(self, text: str) -> NoteSignature:
        try:
            answer = self._command.exchange((b64encode(text.encode()) + "\n").encode())
        except CommandFailed as exc:
            raise SignerUnavailable(str(exc)) from exc
        try:
            signature = b64decode(answer, "signature")
        except FormatError as exc:
            raise SigningRefused(f"the external signer answered {answer[:40]!r}, not a base64 signature") from exc
        if not self._verifier.verify(text, signature):
            raise SigningRefused("the external signer's signature does not verify with the configured key")
        return NoteSignature(self.name, self._verifier.key_id, signature)

    def close(self) -> None:
        self._command.close()


def load_signer(settings: Settings) -> tuple[NoteSigner, bool]:
    """The configured checkpoint key: an external signer (``ATLAS_SIGNER_COMMAND`` with
    ``ATLAS_SIGNER_VKEY``) or the key file (created when absent). Returns (signer, created)."""
    if settings.signer_command:
        assert settings.signer_vkey is not None  # the settings validator demands both
        verifier = Verifier.from_vkey(settings.signer_vkey)
        if verifier.name != settings.origin:
            raise SigningRefused(f"the signer key is for origin {verifier.name!r}, not {settings.origin!r}")
        return CommandSigner(settings.signer_command, verifier, settings.signer_timeout_s), False
    return load_or_create_key(settings.signing_key_path, settings.origin)


class CheckpointSigner:
    """Signs checkpoints for one origin after proving each is consistent with its predecessor.

    With a :class:`LastSignedFile` it also refuses to sign over a database that is behind (or beside) what
    the key already signed, whichever process signed it; without one it only remembers this process's last.
    ``sign`` and ``committed`` block (file locks, fsync, an external signer): call them off the event loop.
    """

    def __init__(self, signer: NoteSigner, record: LastSignedFile | None = None) -> None:
        self.signer = signer
        self.record = record
        self._last: Checkpoint | None = None  # the newest checkpoint this process knows was committed

    @property
    def origin(self) -> str:
        return self.signer.name

    @property
    def external(self) -> bool:
        """Whether the key is held by an external signer process (slow, bounded by its timeout)."""
        return isinstance(self.signer, CommandSigner)

    def adopt(self, database: Checkpoint, held: TreeHead | None = None) -> str | None:
        """At start: compare the database's tree with the record. Returns why writes will be refused, or
        ``None`` when the record agrees (creating it when there is none, confirming a batch that committed).

        ``held`` is a tree the database's own checkpoint history holds: when the record's newest tree is
        ``held`` and the database is larger, the database extends the record (a key folder restored from an
        older copy), and the record moves forward to it."""
        if self.record is None:
            return None
        head = TreeHead(database.size, database.root_hash)
        try:
            with self.record.locked():
                found = self.record.read()
                extends = found is not None and found.signed == held and head.size > found.signed.size
                if not extends:
                    check_database(found, head, self.record.path)
                if found is None or extends or (found.pending and found.signed == head):
                    self.record.write(SignedRecord(self.record.key, head, head))
        except RecordRefused as exc:
            return str(exc)
        return None

    def sign(self, previous: Checkpoint, new: Checkpoint, proof: Sequence[bytes]) -> bytes:
        """Sign ``new`` if ``proof`` proves it extends ``previous`` (the last committed checkpoint) and
        ``previous`` is what the record says this key signed; the record names ``new`` before it returns."""
        if new.origin != self.origin or previous.origin != self.origin:
            raise SigningRefused(f"signer for {self.origin!r} will not sign for another origin")
        last = self._last if self.record is None else None  # the record, when there is one, knows better
        if last is not None and (
            previous.size < last.size or (previous.size == last.size and previous.root_hash != last.root_hash)
        ):
            raise SigningRefused(
                f"stored tree state (size {previous.size}) is behind or differs from the last signed (size {last.size})"
            )
        if new.size < previous.size:
            raise SigningRefused(f"new size {new.size} is smaller than the last signed size {previous.size}")
        if previous.size > 0:
            try:
                verify_consistency(previous.size, new.size, proof, previous.root_hash, new.root_hash)
            except ProofError as exc:
                raise SigningRefused(f"new checkpoint is not consistent with the last one: {exc}") from exc
        if self.record is None:
            return self._sign(new)
        base = TreeHead(previous.size, previous.root_hash)
        try:
            with self.record.locked():
                check_database(self.record.read(), base, self.record.path)
                note = self._sign(new)
                # Recorded before the caller commits: a database that later loses this tree is caught.
                self.record.write(SignedRecord(self.record.key, base, TreeHead(new.size, new.root_hash)))
        except RecordRefused as exc:
            raise SigningRefused(str(exc), pending=exc.pending) from exc
        return note

    def _sign(self, new: Checkpoint) -> bytes:
        try:
            return sign_checkpoint(new, self.signer)
        except Error as exc:
            raise SigningRefused(str(exc)) from exc

    def withdraw(self, checkpoint: Checkpoint) -> None:
        """Take back ``checkpoint`` (signed by :meth:`sign`) when its batch can never commit: the transaction
        failed before its COMMIT was sent, so nobody was or will be told of it. The record returns to the tree
        the batch extended, and the next batch may sign over that tree again. Call it before the rollback
        releases the tree-state lock (no other process signs meanwhile), and never when the commit's outcome is
        unknown (a COMMIT that failed or was interrupted): the record then stays pending and the server refuses
        to sign over the batch's base (see :func:`~atlas_log_server.log.last_signed.check_database`)."""
        # Settled back to the tree it extended; if that fails the record stays pending and the next batch is
        # refused, never forked.
        self._settle(checkpoint, lambda found, head: None if found.frozen else found.committed)

    def holds_pending(self, previous: Checkpoint, checkpoint: Checkpoint) -> bool:
        """Whether the record holds ``checkpoint`` signed and pending over ``previous``: nobody released it,
        froze the log or signed another tree since (without a record, only this process signs: true). Ask
        under the tree-state lock, which every writer of the record holds."""
        if self.record is None:
            return True
        try:
            with self.record.locked():
                found = self.record.read()
        except RecordRefused:
            return False
        return (
            found is not None
            and not found.frozen
            and found.committed == TreeHead(previous.size, previous.root_hash)
            and found.signed == TreeHead(checkpoint.size, checkpoint.root_hash)
        )

    def committed(self, checkpoint: Checkpoint) -> None:
        """Record that ``checkpoint`` is durably the log's state (call after the batch commits, before anyone
        is told of it)."""
        if self._last is None or checkpoint.size >= self._last.size:
            self._last = checkpoint
        # Another process may have signed past it already; its record then names this tree as committed. If
        # recording fails, no receipt is given for a checkpoint the record does not hold as committed.
        self._settle(checkpoint, lambda found, head: head)

    def _settle(self, checkpoint: Checkpoint, to: Callable[[SignedRecord, TreeHead], TreeHead | None]) -> None:
        """If the record is still pending on ``checkpoint``, make it neither pending nor ahead: both its
        committed and signed trees become ``to(record, checkpoint's head)`` (None: leave the record)."""
        if self.record is None:
            return
        head = TreeHead(checkpoint.size, checkpoint.root_hash)
        try:
            with self.record.locked():
                found = self.record.read()
                if found is not None and found.pending and found.signed == head:
                    settled = to(found, head)
                    if settled is not None:
                        self.record.write(SignedRecord(found.key, settled, settled))
        except RecordRefused as exc:
            raise SigningRefused(str(exc)) from exc
