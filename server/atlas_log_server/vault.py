"""The disclosure vault: a confidential entry's disclosures, encrypted at rest, erasable for good.

Each entry's disclosures (the JSON list of their encoded texts) are encrypted with AES-256-GCM under a data key
of their own, bound to the entry by its ID as associated data, so a ciphertext moved to another entry does not
open. The data key is stored wrapped by the log's key-encryption key (:class:`KeyWrapper`: a key file in the
key directory, :class:`FileKek`, or an external KMS adapter answering the same two calls, :class:`CommandKek`),
never in the clear.

Erasing an entry's disclosures (crypto-shredding) drops its wrapped key and ciphertext from the database, and
first appends the entry to a tombstone file beside the key-encryption key: a database backup taken before the
erasure still holds the wrapped key, and the key-encryption key still opens it, so the vault refuses to open
any tombstoned entry and :meth:`Vault.tombstoned` lets the server erase such rows again when it starts on a
restored database. The tombstones live with the key material, outside every database dump.

The vault also holds each tenant's blinding key (:meth:`Vault.blinding_key`), which keys the blinded digests
that stand in a confidential statement for the digests it hides (:func:`atlas_log.disclosure.blind`): derived
from one secret of the key directory, so the log checks them at admission and gives them to the tenant and its
grant holders, and nobody else can compute one.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from atlas_log._encoding import b64decode, b64encode
from atlas_log.errors import FormatError
from atlas_log.files import create_once
from atlas_log_server.line_command import CommandFailed, LineCommand

_AAD = b"atlas-log/disclosures/v1\n"
_KEY_AAD = b"atlas-log/disclosure-key/v1\n"
_NONCE = 12


class VaultError(Exception):
    """A sealed value that does not open (wrong key, altered bytes, another entry's) or an erased one."""


class VaultUnavailable(VaultError):
    """The external key-encryption service did not answer (in time): nothing is wrong with the sealed value."""


class KeyWrapper(Protocol):
    """Wraps and unwraps data keys; ``context`` (the entry ID) must be given back to unwrap. ``external``: the
    calls may block (a service), so callers run them off the event loop."""

    external: bool

    def wrap(self, key: bytes, context: bytes) -> bytes: ...

    def unwrap(self, wrapped: bytes, context: bytes) -> bytes: ...


def key_file(path: Path) -> bytes:
    """The 256-bit secret in ``path``, created (mode 0600, durably) on first use; processes starting together
    agree on one."""
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        key = create_once(path, AESGCM.generate_key(bit_length=256))
    if len(key) != 32:
        raise VaultError(f"{path} does not hold a 256-bit key")
    return key


class FileKek:
    """A 256-bit key-encryption key in a file of the key directory (created, mode 0600, on first use)."""

    external = False

    def __init__(self, path: Path) -> None:
        self.path = path
        self._aead = AESGCM(key_file(path))

    def wrap(self, key: bytes, context: bytes) -> bytes:
        nonce = os.urandom(_NONCE)
        return nonce + self._aead.encrypt(nonce, key, _KEY_AAD + context)

    def unwrap(self, wrapped: bytes, context: bytes) -> bytes:
        try:
            return self._aead.decrypt(wrapped[:_NONCE], wrapped[_NONCE:], _KEY_AAD + context)
        except InvalidTag as exc:
            raise VaultError("the data key does not unwrap under this log's key-encryption key") from exc


class CommandKek:
    """A key-encryption key held by an external service (an HSM or KMS adapter), spoken to as a
    :class:`~atlas_log_server.line_command.LineCommand`: the request ``wrap <context> <key>`` is answered by
    the wrapped key, ``unwrap <context> <wrapped>`` by the key (every value standard base64, one line each).
    The service binds the wrapped key to the context (the entry ID) as the file key does; an unwrapped key is
    checked to be 256 bits."""

    external = True

    def __init__(self, command: str, timeout_s: float) -> None:
        self._command = LineCommand(command, timeout_s, "the external key-encryption command")

    def _ask(self, verb: str, context: bytes, value: bytes) -> bytes:
        try:
            answer = self._command.exchange(f"{verb} {b64encode(context)} {b64encode(value)}\n".encode())
        except CommandFailed as exc:
            raise VaultUnavailable(str(exc)) from exc
        try:
            return b64decode(answer, f"the answer to {verb}")
        except FormatError as exc:
            raise VaultError(f"the external key-encryption command answered {verb} with {answer[:40]!r}") from exc

    def wrap(self, key: bytes, context: bytes) -> bytes:
        return self._ask("wrap", context, key)

    def unwrap(self, wrapped: bytes, context: bytes) -> bytes:
        key = self._ask("unwrap", context, wrapped)
        if len(key) != 32:
            raise VaultError("the external key-encryption command unwrapped no 256-bit key")
        return key

    def close(self) -> None:
        self._command.close()


@dataclass(frozen=True, slots=True)
class Sealed:
    """An entry's disclosures at rest: the wrapped data key and the ciphertext (nonce first)."""

    wrapped_key: bytes
    ciphertext: bytes


class Vault:
    """Seals, opens and erases disclosures; ``tombstones`` is the file of erased entry IDs (hex, one a line);
    ``blinding_secret`` the 256-bit secret every tenant's blinding key is derived from."""

    def __init__(self, wrapper: KeyWrapper, tombstones: Path, blinding_secret: bytes) -> None:
        self.wrapper = wrapper
        self.tombstones = tombstones
        self._blinding = blinding_secret
        self._lock = threading.Lock()

    def blinding_key(self, tenant: str) -> bytes:
        """The tenant's 256-bit blinding key: HMAC-SHA256 of its name under the log's blinding secret, so one
        tenant's key tells nothing of another's."""
        return hmac.new(self._blinding, b"atlas-log/blinding-key/v1\n" + tenant.encode(), hashlib.sha256).digest()

    def seal(self, entry_id: bytes, disclosures: list[str]) -> Sealed:
        key = AESGCM.generate_key(bit_length=256)
        nonce = os.urandom(_NONCE)
        plain = json.dumps(disclosures, separators=(",", ":")).encode()
        return Sealed(self.wrapper.wrap(key, entry_id), nonce + AESGCM(key).encrypt(nonce, plain, _AAD + entry_id))

    def open(self, entry_id: bytes, sealed: Sealed) -> list[str]:
        """The disclosures; raises :class:`VaultError` when they do not open or the entry was erased."""
        if entry_id.hex() in self.tombstoned():
            raise VaultError("this entry's disclosures were erased")
        key = self.wrapper.unwrap(sealed.wrapped_key, entry_id)
        try:
            plain = AESGCM(key).decrypt(sealed.ciphertext[:_NONCE], sealed.ciphertext[_NONCE:], _AAD + entry_id)
        except InvalidTag as exc:
            raise VaultError("the disclosures do not open with their data key (altered, or another entry's)") from exc
        out = json.loads(plain)
        if not isinstance(out, list) or not all(isinstance(d, str) for d in out):
            raise VaultError("sealed disclosures are not a list of strings")
        return out

    def bury(self, entry_id: bytes) -> None:
        """Record the erasure outside the database, durably, before the database forgets the key."""
        with self._lock:
            self.tombstones.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.tombstones, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                os.write(fd, entry_id.hex().encode() + b"\n")
                os.fsync(fd)
            finally:
                os.close(fd)

    def tombstoned(self) -> frozenset[str]:
        """The IDs (hex) of every entry whose disclosures were erased."""
        try:
            text = self.tombstones.read_text()
        except FileNotFoundError:
            return frozenset()
        return frozenset(line.strip() for line in text.splitlines() if line.strip())
