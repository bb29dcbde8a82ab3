"""The witness's signing key file: ``PRIVATE+KEY+<name>+<hex key ID>+<base64(0x04 ‖ Ed25519 seed)>`` (mode 0600)."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from atlas_log._encoding import b64decode, b64encode
from atlas_log.cosignature import ALG_COSIGNATURE_V1, CosignatureSigner
from atlas_log.errors import FormatError


def load_witness_key(path: Path, name: str) -> CosignatureSigner:
    """The witness key in ``path``; its name must be ``name``. Raises :class:`OSError` (no such file, say) or
    :class:`FormatError`, each naming the file."""
    parts = path.read_text().strip().split("+", 4)
    if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
        raise FormatError(f"{path} is not a witness private key")
    raw = b64decode(parts[4], "witness key")
    if len(raw) != 33 or raw[0] != ALG_COSIGNATURE_V1:
        raise FormatError(f"{path} does not hold a cosignature (0x04) Ed25519 key")
    signer = CosignatureSigner(parts[2], Ed25519PrivateKey.from_private_bytes(raw[1:]))
    if signer.verifier.name != name or f"{signer.verifier.key_id:08x}" != parts[3]:
        raise FormatError(f"the key in {path} is for witness {parts[2]!r}, not {name!r}, or is damaged")
    return signer


def create_witness_key(path: Path, name: str) -> CosignatureSigner:
    """A new witness key named ``name``, written to ``path`` (mode 0600); :class:`FileExistsError` when there is
    a file there already (it is never replaced: it is the witness's identity)."""
    key = Ed25519PrivateKey.generate()
    signer = CosignatureSigner(name, key)
    seed = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    text = f"PRIVATE+KEY+{name}+{signer.verifier.key_id:08x}+{b64encode(bytes([ALG_COSIGNATURE_V1]) + seed)}\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return signer


def load_or_create_witness_key(path: Path, name: str) -> tuple[CosignatureSigner, bool]:
    """The witness key in ``path`` (its name must match), or a new one written there. Returns (signer, created)."""
    if path.exists():
        return load_witness_key(path, name), False
    return create_witness_key(path, name), True
