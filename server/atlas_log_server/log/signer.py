"""The checkpoint signer: signs only checkpoints consistent with the last one it signed (tlog-checkpoint).

The key is a file (generated on first start) or held by an external signer: a long-running command that
reads one base64 message per line on stdin and answers with one base64 Ed25519 signature per line on stdout
(the interface an HSM or KMS adapter implements). Every external signature is verified against the
configured verifier key before it is used.
"""

from __future__ import annotations

import base64
import binascii
import os
import shlex
import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path

from atlas_log.checkpoint import Checkpoint, sign_checkpoint
from atlas_log.errors import Error, ProofError
from atlas_log.merkle import verify_consistency
from atlas_log.note import NoteSignature, NoteSigner, Signer, Verifier
from atlas_log_server.config import Settings
from atlas_log_server.log.last_signed import LastSignedFile, RecordRefused, SignedRecord, TreeHead, check_database


class SigningRefused(Exception):
    """The signer was asked to sign a checkpoint that could fork the log."""


def load_or_create_key(path: Path, origin: str) -> tuple[Signer, bool]:
    """Load the signing key from ``path``, or generate one there (mode 0600). Returns (signer, created)."""
    if path.exists():
        signer = Signer.from_skey(path.read_text())
        if signer.name != origin:
            raise SigningRefused(f"key in {path} is for origin {signer.name!r}, not the configured {origin!r}")
        return signer, False
    signer = Signer.generate(origin)
    path.parent.mkdir(parents=True, exist_ok=True)
    # O_EXCL: two processes starting at once must not each write a different key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return load_or_create_key(path, origin)
    with os.fdopen(fd, "w") as f:
        f.write(signer.skey + "\n")
    return signer, True


class CommandSigner:
    """A :class:`~atlas_log.note.NoteSigner` whose key lives in an external signer process."""

    def __init__(self, command: str, verifier: Verifier, timeout_s: float = 10.0) -> None:
        self._verifier = verifier
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._proc = subprocess.Popen(
            shlex.split(command), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )

    @property
    def name(self) -> str:
        return self._verifier.name

    @property
    def verifier(self) -> Verifier:
        return self._verifier

    def sign(self, text: str) -> NoteSignature:
        with self._lock:
            assert self._proc.stdin is not None and self._proc.stdout is not None
            if self._proc.poll() is not None:
                raise SigningRefused(f"the external signer exited with {self._proc.returncode}")
            self._proc.stdin.write(base64.b64encode(text.encode()).decode() + "\n")
            self._proc.stdin.flush()
            answer = self._proc.stdout.readline().strip()
        try:
            signature = base64.b64decode(answer, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise SigningRefused(f"the external signer answered {answer[:40]!r}, not a base64 signature") from exc
        if not self._verifier.verify(text, signature):
            raise SigningRefused("the external signer's signature does not verify with the configured key")
        return NoteSignature(self.name, self._verifier.key_id, signature)

    def close(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        try:
            self._proc.wait(5)
        except subprocess.TimeoutExpired:
            self._proc.kill()


def load_signer(settings: Settings) -> tuple[NoteSigner, bool]:
    """The configured checkpoint key: an external signer (``ATLAS_SIGNER_COMMAND`` with
    ``ATLAS_SIGNER_VKEY``) or the key file (created when absent). Returns (signer, created)."""
    if settings.signer_command:
        assert settings.signer_vkey is not None  # the settings validator demands both
        verifier = Verifier.from_vkey(settings.signer_vkey)
        if verifier.name != settings.origin:
            raise SigningRefused(f"the signer key is for origin {verifier.name!r}, not {settings.origin!r}")
        return CommandSigner(settings.signer_command, verifier), False
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

    def adopt(self, database: Checkpoint) -> str | None:
        """At start: compare the database's tree with the record. Returns why writes will be refused, or
        ``None`` when the record agrees (creating it when there is none, confirming a batch that committed)."""
        if self.record is None:
            return None
        head = TreeHead(database.size, database.root_hash)
        with self.record.locked():
            try:
                found = self.record.read()
                check_database(found, head, self.record.path)
            except RecordRefused as exc:
                return str(exc)
            if found is None or (found.pending and found.signed == head):
                self.record.write(SignedRecord(self.record.key, head, head))
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
        with self.record.locked():
            try:
                check_database(self.record.read(), base, self.record.path)
            except RecordRefused as exc:
                raise SigningRefused(str(exc)) from exc
            note = self._sign(new)
            # Recorded before the caller commits: a database that later loses this tree is caught.
            self.record.write(SignedRecord(self.record.key, base, TreeHead(new.size, new.root_hash)))
        return note

    def _sign(self, new: Checkpoint) -> bytes:
        try:
            return sign_checkpoint(new, self.signer)
        except Error as exc:
            raise SigningRefused(str(exc)) from exc

    def committed(self, checkpoint: Checkpoint) -> None:
        """Record that ``checkpoint`` is durably the log's state (call after the batch commits, before anyone
        is told of it)."""
        if self._last is None or checkpoint.size >= self._last.size:
            self._last = checkpoint
        if self.record is None:
            return
        head = TreeHead(checkpoint.size, checkpoint.root_hash)
        with self.record.locked():
            found = self.record.read()
            # Another process may have signed past it already; its record then names this tree as committed.
            if found is not None and found.pending and found.signed == head:
                self.record.write(SignedRecord(found.key, head, head))
