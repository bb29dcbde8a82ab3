"""C2SP signed notes (https://c2sp.org/signed-note, v1.0.0) with Ed25519 keys.

A note is text ending in a newline, a blank line, then signature lines
``— <key name> <base64(key ID ‖ signature)>``. Key IDs are ``SHA-256(name ‖ 0x0A ‖ type ‖ key)[:4]``.
The key ID in a signature line is an unauthenticated hint: a signature counts only when a verifier with the
same name *and* ID checks it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NewType, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from atlas_log._encoding import b64decode, b64encode
from atlas_log.errors import FormatError, SignatureError

__all__ = [
    "ALG_ED25519",
    "KeyID",
    "Note",
    "NoteSignature",
    "NoteSigner",
    "Signer",
    "Verifier",
    "format_note",
    "key_id",
    "open_note",
    "parse_note",
    "split_vkey",
]

KeyID = NewType("KeyID", int)
"""The 32-bit key ID of a signature line, big-endian."""

ALG_ED25519 = 0x01  # signed-note: Ed25519 over the note text

MAX_SIGNATURES = 100  # the spec demands at least 16; more is treated as malformed (as Go's note.Open does)
_EM_DASH = "\u2014"
_NAME = re.compile(r"\A[^\s+]+\Z")


def key_id(name: str, alg: int, public_key: bytes) -> KeyID:
    """The C2SP key ID: ``SHA-256(name ‖ 0x0A ‖ alg ‖ public_key)[:4]`` as a big-endian integer."""
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([alg]) + public_key).digest()
    return KeyID(int.from_bytes(digest[:4], "big"))


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise FormatError(f"key name {name!r} must be non-empty and contain no spaces or '+'")


def split_vkey(vkey: str) -> tuple[str, KeyID, bytes]:
    """The parts of a verifier key ``<name>+<hex key ID>+<base64(type ‖ key)>``: name, key ID, type ‖ key."""
    parts = vkey.split("+", 2)
    if len(parts) != 3 or not re.fullmatch(r"[0-9a-f]{8}", parts[1]):
        raise FormatError("verifier key must be <name>+<8 lowercase hex digit key ID>+<base64 key>")
    raw = b64decode(parts[2], "verifier key")
    if not raw:
        raise FormatError("verifier key has no key bytes")
    return parts[0], KeyID(int(parts[1], 16)), raw


@dataclass(frozen=True, slots=True)
class NoteSignature:
    """One signature line: key name, key ID hint and the signature bytes after the ID."""

    name: str
    key_id: KeyID
    signature: bytes

    def line(self) -> str:
        """The signature line, newline included."""
        return f"{_EM_DASH} {self.name} {b64encode(self.key_id.to_bytes(4, 'big') + self.signature)}\n"


@dataclass(frozen=True, slots=True)
class Note:
    """A parsed (not yet verified) signed note. ``text`` includes its final newline."""

    text: str
    signatures: tuple[NoteSignature, ...]

    def to_bytes(self) -> bytes:
        return format_note(self.text, self.signatures)


def format_note(text: str, signatures: Iterable[NoteSignature]) -> bytes:
    """Serialise a note: text, blank line, signature lines."""
    if not text.endswith("\n"):
        raise FormatError("note text must end with a newline")
    return (text + "\n" + "".join(s.line() for s in signatures)).encode()


def parse_note(msg: bytes) -> Note:
    """Parse a signed note strictly (signed-note §Format); raise :class:`FormatError` when malformed."""
    try:
        s = msg.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FormatError("note is not valid UTF-8") from exc
    if any(c < " " and c != "\n" for c in s):
        raise FormatError("note contains a control character other than newline")
    split = s.rfind("\n\n")
    if split < 0:
        raise FormatError("note has no blank line separating text and signatures")
    text, block = s[: split + 1], s[split + 2 :]
    if not block or not block.endswith("\n"):
        raise FormatError("note has no signature lines, or they do not end with a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise FormatError(f"note has more than {MAX_SIGNATURES} signatures")
    sigs: list[NoteSignature] = []
    for line in lines:
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != _EM_DASH:
            raise FormatError(f"malformed signature line {line!r}")
        _check_name(parts[1])
        raw = b64decode(parts[2], "note signature")
        if len(raw) < 5:
            raise FormatError(f"signature of {parts[1]!r} is too short")
        sig = NoteSignature(parts[1], KeyID(int.from_bytes(raw[:4], "big")), raw[4:])
        if sig not in sigs:  # exact duplicates carry no information
            sigs.append(sig)
    return Note(text, tuple(sigs))


class Verifier:
    """A trusted key: verifies signature lines carrying its name and key ID.

    Only Ed25519 (type 0x01) signatures over the note text are verified here.
    """

    __slots__ = ("_key", "alg", "key_id", "name", "public_key")

    def __init__(self, name: str, public_key: bytes) -> None:
        _check_name(name)
        if len(public_key) != 32:
            raise FormatError(f"Ed25519 public key must be 32 bytes, got {len(public_key)}")
        self.name = name
        self.alg = ALG_ED25519
        self.public_key = public_key
        self.key_id = key_id(name, ALG_ED25519, public_key)
        self._key = Ed25519PublicKey.from_public_bytes(public_key)

    @classmethod
    def from_vkey(cls, vkey: str) -> Verifier:
        """Parse a verifier key ``<name>+<hex key ID>+<base64(type ‖ key)>`` and check its key ID."""
        name, kid, raw = split_vkey(vkey)
        if raw[0] != ALG_ED25519:
            raise FormatError("verifier key type must be Ed25519 (0x01)")
        v = cls(name, raw[1:])
        if v.key_id != kid:
            raise FormatError(f"verifier key ID {kid:08x} does not match the key ({v.key_id:08x})")
        return v

    @property
    def vkey(self) -> str:
        """This key in verifier-key text form."""
        return f"{self.name}+{self.key_id:08x}+{b64encode(bytes([self.alg]) + self.public_key)}"

    def verify(self, text: str, signature: bytes) -> bool:
        """True when ``signature`` is this key's signature over ``text`` (the note text, final newline included)."""
        try:
            self._key.verify(signature, text.encode())
        except InvalidSignature:
            return False
        return True

    def __repr__(self) -> str:
        return f"Verifier({self.vkey!r})"


class Signer:
    """An Ed25519 note signer. The private key text form is ``PRIVATE+KEY+<name>+<hex ID>+<base64(0x01 ‖ seed)>``."""

    __slots__ = ("_key", "verifier")

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        pub = private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.verifier = Verifier(name, pub)

    @classmethod
    def generate(cls, name: str) -> Signer:
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def from_skey(cls, skey: str) -> Signer:
        """Parse the private key text form and check that its key ID matches."""
        parts = skey.strip().split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
            raise FormatError("private key must be PRIVATE+KEY+<name>+<hex key ID>+<base64 key>")
        name, hex_id, b64 = parts[2:]
        raw = b64decode(b64, "private key")
        if len(raw) != 33 or raw[0] != ALG_ED25519:
            raise FormatError("private key must be an Ed25519 (type 0x01) 32-byte seed")
        signer = cls(name, Ed25519PrivateKey.from_private_bytes(raw[1:]))
        if f"{signer.verifier.key_id:08x}" != hex_id:
            raise FormatError(f"private key ID {hex_id} does not match the key")
        return signer

    @property
    def name(self) -> str:
        return self.verifier.name

    @property
    def skey(self) -> str:
        """This key in private-key text form (a secret: store it with mode 0600)."""
        seed = self._key.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        return f"PRIVATE+KEY+{self.name}+{self.verifier.key_id:08x}+{b64encode(bytes([ALG_ED25519]) + seed)}"

    def sign(self, text: str) -> NoteSignature:
        """Sign note text (which must end with a newline)."""
        if not text.endswith("\n"):
            raise FormatError("note text must end with a newline")
        return NoteSignature(self.name, self.verifier.key_id, self._key.sign(text.encode()))


class NoteSigner(Protocol):
    """Anything that signs note text as one named key: a :class:`Signer` holding the key, or an interface to
    a key held elsewhere (an HSM or KMS)."""

    @property
    def name(self) -> str: ...

    @property
    def verifier(self) -> Verifier: ...

    def sign(self, text: str) -> NoteSignature: ...


def open_note(msg: bytes, verifiers: Sequence[Verifier]) -> tuple[Note, list[NoteSignature]]:
    """Parse ``msg`` and verify it against ``verifiers`` (signed-note §Verification).

    Signatures from unknown keys (name or ID differ) are ignored. A known key whose signature fails makes
    the whole note invalid. At least one known key must have signed. Returns the note and the signatures
    that verified.
    """
    note = parse_note(msg)
    known = {(v.name, v.key_id): v for v in verifiers}
    verified: list[NoteSignature] = []
    for sig in note.signatures:
        v = known.get((sig.name, sig.key_id))
        if v is None:
            continue
        if not v.verify(note.text, sig.signature):
            raise SignatureError(f"signature by {sig.name} ({sig.key_id:08x}) does not verify")
        verified.append(sig)
    if not verified:
        # Names alone do not tell two keys of one name apart (a development log makes a new key per data
        # folder): each key is named with its ID, as the verifier key text shows it (name+ID+key).
        names = ", ".join(sorted(f"{v.name}+{v.key_id:08x}" for v in verifiers)) or "none"
        signed = ", ".join(f"{s.name}+{s.key_id:08x}" for s in note.signatures) or "none"
        raise SignatureError(f"note carries no signature from a trusted key (trusted: {names}; signed by: {signed})")
    return note, verified
