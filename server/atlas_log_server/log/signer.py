"""The checkpoint signer: signs only checkpoints consistent with the last one it signed (tlog-checkpoint)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from atlas_log.checkpoint import Checkpoint, sign_checkpoint
from atlas_log.errors import Error, ProofError
from atlas_log.merkle import verify_consistency
from atlas_log.note import Signer


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


class CheckpointSigner:
    """Signs checkpoints for one origin after proving each is consistent with its predecessor."""

    def __init__(self, signer: Signer) -> None:
        self.signer = signer
        self._last: Checkpoint | None = None  # the newest checkpoint this process knows was committed

    @property
    def origin(self) -> str:
        return self.signer.name

    def sign(self, previous: Checkpoint, new: Checkpoint, proof: Sequence[bytes]) -> bytes:
        """Sign ``new`` if ``proof`` proves it extends ``previous`` (the last committed checkpoint)."""
        if new.origin != self.origin or previous.origin != self.origin:
            raise SigningRefused(f"signer for {self.origin!r} will not sign for another origin")
        last = self._last
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
        try:
            return sign_checkpoint(new, self.signer)
        except Error as exc:
            raise SigningRefused(str(exc)) from exc

    def committed(self, checkpoint: Checkpoint) -> None:
        """Record that ``checkpoint`` is durably the log's state (call after the batch commits)."""
        if self._last is None or checkpoint.size >= self._last.size:
            self._last = checkpoint
