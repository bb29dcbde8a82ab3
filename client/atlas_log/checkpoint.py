"""C2SP tlog-checkpoint (https://c2sp.org/tlog-checkpoint, v1.0.0): the signed statement of a log's state.

Note text: origin line, tree size in decimal without leading zeros, base64 root hash, then optional
non-empty extension lines; every line ends in a newline.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from atlas_log._encoding import b64decode, b64encode
from atlas_log.errors import FormatError, SignatureError
from atlas_log.merkle import HASH_SIZE, RootHash
from atlas_log.note import NoteSigner, Verifier, format_note, open_note

__all__ = [
    "Checkpoint",
    "Succession",
    "frozen_checkpoint",
    "open_checkpoint",
    "parse_checkpoint",
    "sign_checkpoint",
    "succession",
]

_SIZE = re.compile(r"\A(0|[1-9][0-9]{0,19})\Z")
MAX_SIZE = (1 << 63) - 1


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A checkpoint body: which log, how many leaves, which root."""

    origin: str
    size: int
    root_hash: RootHash
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin:
            raise FormatError("checkpoint origin must be a non-empty single line")
        if not 0 <= self.size <= MAX_SIZE:
            raise FormatError(f"checkpoint size {self.size} out of range")
        if len(self.root_hash) != HASH_SIZE:
            raise FormatError(f"checkpoint root hash must be {HASH_SIZE} bytes")
        if any(not e or "\n" in e for e in self.extensions):
            raise FormatError("checkpoint extension lines must be non-empty single lines")

    def text(self) -> str:
        """The note text (tlog-checkpoint §Note text), final newline included."""
        lines = [self.origin, str(self.size), b64encode(self.root_hash), *self.extensions]
        return "".join(line + "\n" for line in lines)


def parse_checkpoint(text: str) -> Checkpoint:
    """Parse checkpoint note text strictly: canonical size, canonical base64, 32-byte root."""
    if not text.endswith("\n"):
        raise FormatError("checkpoint text must end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise FormatError("checkpoint needs origin, size and root hash lines")
    origin, size, root, *ext = lines
    if not origin:
        raise FormatError("checkpoint origin line is empty")
    if not _SIZE.match(size):
        raise FormatError(f"checkpoint size {size!r} is not a decimal without leading zeros")
    raw = b64decode(root, "checkpoint root hash")
    if len(raw) != HASH_SIZE:
        raise FormatError(f"checkpoint root hash must be {HASH_SIZE} bytes, got {len(raw)}")
    return Checkpoint(origin, int(size), RootHash(raw), tuple(ext))


def open_checkpoint(note: bytes, verifier: Verifier, origin: str | None = None) -> Checkpoint:
    """Verify a signed checkpoint note with the log's key and parse it.

    ``origin`` defaults to the verifier's key name (tlog-checkpoint: the log's key name SHOULD match the
    origin); a checkpoint for any other origin is rejected with :class:`SignatureError`.
    """
    n, _ = open_note(note, [verifier])
    cp = parse_checkpoint(n.text)
    want = verifier.name if origin is None else origin
    if cp.origin != want:
        raise SignatureError(f"checkpoint origin {cp.origin!r} is not the expected {want!r}")
    return cp


def sign_checkpoint(checkpoint: Checkpoint, signer: NoteSigner) -> bytes:
    """Sign a checkpoint as a C2SP signed note; the signer's name must be the origin."""
    if signer.name != checkpoint.origin:
        raise FormatError(f"signer {signer.name!r} may not sign for origin {checkpoint.origin!r}")
    text = checkpoint.text()
    return format_note(text, [signer.sign(text)])


# Extension lines of a frozen log's final checkpoint (same size and root as its last checkpoint).
FROZEN_LINE = "atlas-log-frozen"
SUCCESSOR_PREFIX = "atlas-log-successor "


@dataclass(frozen=True, slots=True)
class Succession:
    """What a frozen log's final checkpoint says: it will never grow, and (optionally) which log succeeds it."""

    url: str | None = None
    vkey: str | None = None


def succession(checkpoint: Checkpoint) -> Succession | None:
    """The succession a frozen log's final checkpoint declares; None for a live log's checkpoint."""
    if FROZEN_LINE not in checkpoint.extensions:
        return None
    for line in checkpoint.extensions:
        if line.startswith(SUCCESSOR_PREFIX):
            url, _, vkey = line[len(SUCCESSOR_PREFIX) :].partition(" ")
            return Succession(url or None, vkey or None)
    return Succession()


def frozen_checkpoint(checkpoint: Checkpoint, successor_url: str | None, successor_vkey: str | None) -> Checkpoint:
    """The final checkpoint of a log frozen at ``checkpoint`` (same tree), naming its successor if any."""
    lines = [FROZEN_LINE]
    if successor_url or successor_vkey:
        if successor_vkey is not None:
            Verifier.from_vkey(successor_vkey)  # a successor key that does not parse is refused here
        lines.append(f"{SUCCESSOR_PREFIX}{successor_url or '-'} {successor_vkey or ''}".rstrip())
    return Checkpoint(checkpoint.origin, checkpoint.size, checkpoint.root_hash, (*checkpoint.extensions, *lines))
