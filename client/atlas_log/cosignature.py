"""C2SP tlog-cosignature v1 (https://c2sp.org/tlog-cosignature): timestamped Ed25519 cosignatures, type 0x04.

A cosignature line is a note signature whose bytes are ``timestamp (u64, big-endian) ‖ Ed25519 signature``
over::

    cosignature/v1
    time <timestamp>
    <the checkpoint's note text>

It states: as of that time, this is the largest consistent tree head the cosigner has seen for the origin.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from atlas_log._encoding import b64encode
from atlas_log.errors import FormatError, SignatureError
from atlas_log.note import ALG_ED25519, KeyID, Note, NoteSignature, key_id, split_vkey

__all__ = [
    "ALG_COSIGNATURE_V1",
    "DEFAULT_COSIGNATURE_MAX_FUTURE_S",
    "DEFAULT_WINDOW",
    "CosignatureSigner",
    "CosignatureVerifier",
    "CosignatureWindow",
    "verify_cosignatures",
]

ALG_COSIGNATURE_V1 = 0x04
MAX_TIMESTAMP = (1 << 63) - 1
DEFAULT_COSIGNATURE_MAX_FUTURE_S = 300  # clock skew tolerated between a witness and a verifier


def _message(text: str, timestamp: int) -> bytes:
    return f"cosignature/v1\ntime {timestamp}\n{text}".encode()


class CosignatureVerifier:
    """A witness's public key: checks its cosignature lines on checkpoints."""

    __slots__ = ("_key", "key_id", "name", "public_key")

    def __init__(self, name: str, public_key: bytes) -> None:
        if not re.fullmatch(r"[^\s+]+", name) or len(public_key) != 32:
            raise FormatError("a cosigner needs a name without spaces or '+' and a 32-byte Ed25519 key")
        self.name = name
        self.public_key = public_key
        self.key_id: KeyID = key_id(name, ALG_COSIGNATURE_V1, public_key)
        self._key = Ed25519PublicKey.from_public_bytes(public_key)

    @classmethod
    def from_vkey(cls, vkey: str) -> CosignatureVerifier:
        """``<name>+<hex key ID>+<base64(0x04 ‖ key)>``; an Ed25519 (0x01) vkey is accepted and re-keyed as 0x04.

        Either way the vkey's key ID must be ``key_id(name, type, key)`` for the type it is written with
        (signed-note §Verifier keys), so a vkey whose ID belongs to another name or key is refused.
        """
        name, kid, raw = split_vkey(vkey)
        if len(raw) != 33 or raw[0] not in (ALG_ED25519, ALG_COSIGNATURE_V1):
            raise FormatError("cosigner key must be type 0x04 (or 0x01) with a 32-byte Ed25519 key")
        v = cls(name, raw[1:])
        expected = key_id(name, raw[0], raw[1:])
        if kid != expected:
            raise FormatError(f"cosigner key ID {kid:08x} does not match its name and key (expected {expected:08x})")
        return v

    @property
    def vkey(self) -> str:
        return f"{self.name}+{self.key_id:08x}+{b64encode(bytes([ALG_COSIGNATURE_V1]) + self.public_key)}"

    def timestamp(self, text: str, signature: bytes) -> int | None:
        """The cosignature's timestamp if ``signature`` (timestamp ‖ sig) verifies over ``text``, else None."""
        if len(signature) != 8 + 64:
            return None
        ts = int.from_bytes(signature[:8], "big")
        if ts > MAX_TIMESTAMP:
            return None
        try:
            self._key.verify(signature[8:], _message(text, ts))
        except InvalidSignature:
            return None
        return ts


class CosignatureSigner:
    """A witness's private key (C2SP private-key text form with type 0x04 is not standard: keep it as a seed)."""

    __slots__ = ("_key", "verifier")

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        pub = private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.verifier = CosignatureVerifier(name, pub)

    def sign(self, text: str, timestamp: int) -> NoteSignature:
        if not 0 < timestamp <= MAX_TIMESTAMP:
            raise FormatError("cosignature timestamps are positive and below 2**63")
        sig = self._key.sign(_message(text, timestamp))
        return NoteSignature(self.verifier.name, self.verifier.key_id, timestamp.to_bytes(8, "big") + sig)


@dataclass(frozen=True, slots=True)
class CosignatureWindow:
    """The timestamps a verifier accepts, relative to its own clock.

    ``max_future_s``: how far ahead of the verifier's clock a cosignature may be dated (tlog-cosignature:
    verifiers MAY reject future timestamps). A date ahead of the clock would pass any freshness bound until
    it is reached, so it is never unbounded. ``max_age_s``: when set, how old a cosignature may be; use it
    when the checkpoint must be current (a freshly fetched ``/checkpoint``), not for a receipt kept for years.
    """

    max_future_s: int = DEFAULT_COSIGNATURE_MAX_FUTURE_S
    max_age_s: int | None = None

    def __post_init__(self) -> None:
        if self.max_future_s < 0 or (self.max_age_s is not None and self.max_age_s < 0):
            raise FormatError("cosignature time bounds must be non-negative numbers of seconds")

    def problem(self, timestamp: int, now: int) -> str | None:
        """Why a cosignature dated ``timestamp`` is outside the window at ``now``, or None if it is inside."""
        if timestamp == 0:  # tlog-witness: a checkpoint cosignature's timestamp MUST NOT be zero
            return "dated 0, which a checkpoint cosignature never is"
        if timestamp > now + self.max_future_s:
            return (
                f"dated {timestamp}, {timestamp - now - self.max_future_s} s beyond the allowed clock skew of "
                f"{self.max_future_s} s (is the witness's or this machine's clock wrong?)"
            )
        if self.max_age_s is not None and now - timestamp > self.max_age_s:
            return f"dated {timestamp}, {now - timestamp} s old; the limit is {self.max_age_s} s"
        return None


DEFAULT_WINDOW = CosignatureWindow()
"""Future-dated cosignatures refused beyond the default skew; no age bound."""


def verify_cosignatures(
    note: Note,
    witnesses: Sequence[CosignatureVerifier],
    quorum: int,
    *,
    now: int,
    window: CosignatureWindow = DEFAULT_WINDOW,
) -> list[str]:
    """Names of the witnesses whose cosignatures on ``note`` verify and are dated inside ``window`` at
    ``now`` (POSIX seconds); raise :class:`SignatureError` unless at least ``quorum`` do.

    A cosignature line from a known witness that fails to verify invalidates the note (signed-note rules).
    A valid cosignature dated outside the window does not count, and the error names it and why.
    """
    known = {(w.name, w.key_id): w for w in witnesses}
    good: list[str] = []
    outside: list[str] = []
    for sig in note.signatures:
        w = known.get((sig.name, sig.key_id))
        if w is None:
            continue
        ts = w.timestamp(note.text, sig.signature)
        if ts is None:
            raise SignatureError(f"cosignature by {w.name} does not verify")
        why = window.problem(ts, now)
        if why is not None:
            outside.append(f"{w.name}: {why}")
        elif w.name not in good:
            good.append(w.name)
    if len(good) < quorum:
        detail = f" (not counted: {'; '.join(outside)})" if outside else ""
        raise SignatureError(f"only {len(good)} of the required {quorum} witness cosignatures verify{detail}")
    return good
