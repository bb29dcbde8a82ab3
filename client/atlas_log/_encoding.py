"""Strict base64 and hex decoding shared by every parser.

Lenient decoders accept several spellings of the same bytes; a transparency log must not, because a
second spelling is a second leaf. These helpers accept only the canonical form.
"""

from __future__ import annotations

import base64
import binascii
import json
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


_INT64 = 1 << 63


def _finite_int(text: str) -> int:
    value = int(text)
    if not -_INT64 <= value < (1 << 64):
        raise ValueError(f"integer {text[:30]} does not fit in 64 bits")
    return value


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def json_loads(data: bytes | str, what: str = "value") -> object:
    """Parse JSON strictly (UTF-8, no NaN or Infinity, integers within 64 bits); raise :class:`FormatError`."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        return json.loads(text, parse_int=_finite_int, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise FormatError(f"{what} is not valid JSON: {exc}") from exc
