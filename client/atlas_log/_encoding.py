"""Strict base64 and hex decoding shared by every parser.

Lenient decoders accept several spellings of the same bytes; a transparency log must not, because a
second spelling is a second leaf. These helpers accept only the canonical form.
"""

from __future__ import annotations

import base64
import binascii
import re

from atlas_log.errors import FormatError

_B64_STD = re.compile(rb"\A[A-Za-z0-9+/]*={0,2}\Z")
_HEX = re.compile(r"\A(?:[0-9a-f]{2})*\Z")


def b64decode(text: str | bytes, what: str = "value") -> bytes:
    """Decode canonical, padded standard base64 (RFC 4648 §4); raise :class:`FormatError` otherwise."""
    raw = text.encode("ascii", "replace") if isinstance(text, str) else text
    if len(raw) % 4 or not _B64_STD.match(raw):
        raise FormatError(f"{what} is not padded standard base64")
    try:
        out = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise FormatError(f"{what} is not valid base64: {exc}") from exc
    if base64.b64encode(out) != raw:
        raise FormatError(f"{what} is not canonical base64 (non-zero padding bits)")
    return out


def b64encode(data: bytes) -> str:
    """Encode as padded standard base64 text."""
    return base64.b64encode(data).decode("ascii")


def hexdecode(text: str, what: str = "value", length: int | None = None) -> bytes:
    """Decode lowercase hex; with ``length``, demand exactly that many bytes."""
    if not isinstance(text, str) or not _HEX.match(text):
        raise FormatError(f"{what} must be lowercase hex")
    out = bytes.fromhex(text)
    if length is not None and len(out) != length:
        raise FormatError(f"{what} must be {length} bytes, got {len(out)}")
    return out
