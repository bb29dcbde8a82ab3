"""Strict base64 and hex decoding shared by every parser.

Lenient decoders accept several spellings of the same bytes; a transparency log must not, because a
second spelling is a second leaf. These helpers accept only the canonical form.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import math
import re
from dataclasses import dataclass

from atlas_log.errors import FormatError

_B64_VALUE = {c: v for v, c in enumerate(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")}
_HEX = re.compile(r"\A(?:[0-9a-f]{2})*\Z")
_HEX_ANY_CASE = re.compile(r"\A(?:[0-9a-fA-F]{2})*\Z")


def b64decode(text: str | bytes, what: str = "value") -> bytes:
    """Decode canonical, padded standard base64 (RFC 4648 §4); raise :class:`FormatError` otherwise (also for
    anything but a string or bytes, as a parsed JSON member may be)."""
    if not isinstance(text, str | bytes):
        raise FormatError(f"{what} must be a base64 string, not {type(text).__name__}")
    raw = text.encode("ascii", "replace") if isinstance(text, str) else text
    padding = raw.find(b"=")
    if len(raw) % 4 or -1 < padding < len(raw) - 2:
        raise FormatError(f"{what} is not padded standard base64")
    try:
        # Strict mode refuses anything outside the alphabet, padding before the end and data after it.
        out = binascii.a2b_base64(raw, strict_mode=True)
    except (binascii.Error, ValueError) as exc:
        raise FormatError(f"{what} is not padded standard base64: {exc}") from exc
    pad = raw[-2:].count(b"=")
    # One spelling per value: the bits the padding leaves over in the last character must be zero.
    if pad and _B64_VALUE[raw[-1 - pad]] & (0b1111 if pad == 2 else 0b11):
        raise FormatError(f"{what} is not canonical base64 (non-zero padding bits)")
    return out


def b64encode(data: bytes) -> str:
    """Encode as padded standard base64 text."""
    return base64.b64encode(data).decode("ascii")


def hexdecode(text: str, what: str = "value", length: int | None = None, *, any_case: bool = False) -> bytes:
    """Decode lowercase hex (either case with ``any_case``, for formats such as Intel's collateral that
    spell hex in upper case); with ``length``, demand exactly that many bytes. No whitespace, no prefix."""
    pattern = _HEX_ANY_CASE if any_case else _HEX
    if not isinstance(text, str) or not pattern.match(text):
        raise FormatError(f"{what} must be {'' if any_case else 'lowercase '}hex")
    out = bytes.fromhex(text)
    if length is not None and len(out) != length:
        raise FormatError(f"{what} must be {length} bytes, got {len(out)}")
    return out


@dataclass(frozen=True, slots=True)
class JsonLimits:
    """Bounds on one JSON document: its size in bytes, how many containers deep it nests, and the range of
    its integers. The log admits only what fits, and every verifier parses with the same bounds, so a
    submission the log admits is one every monitor can replay (and the parser's own recursion limit, which
    varies with the caller's stack, never decides a verdict)."""

    max_bytes: int = 1 << 20
    max_depth: int = 64
    min_int: int = -(1 << 63)  # the 64-bit integers, signed and unsigned, as Go and Rust verifiers read them
    max_int: int = (1 << 64) - 1

    def enclosing(self, count: int) -> JsonLimits:
        """The limits of an answer that embeds ``count`` documents at these limits in an array inside an
        object (for example ``{"submissions": [...]}``)."""
        return JsonLimits(self.max_bytes * count + 1024, self.max_depth + 2, self.min_int, self.max_int)


JSON_LIMITS = JsonLimits()
"""The limits of every submission, leaf and statement: admission, replay, verify-evidence and the log's readers."""

ANSWER_LIMITS = JSON_LIMITS.enclosing(256)
"""The limits of a log's API answer: it embeds at most a tile's worth (256) of entries or submissions."""

# A lone surrogate can only come from a \uD800-\uDFFF escape (the UTF-8 decoder refuses encoded ones).
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number {text[:30]} is out of range")
    return value


def _unique(pairs: list[tuple[str, object]]) -> dict[str, object]:
    # RFC 8259 §4 leaves duplicate names to the parser (first wins in some, last in others): refusing them
    # means every verifier reads the same members as the log did (RFC 7493 §2.3, I-JSON, requires as much).
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("an object has a duplicate member name")
    return obj


def _check_tree(obj: object, limits: JsonLimits, strings: bool) -> None:
    """Depth (iteratively, so any depth is safe to inspect) and, when ``strings``, Unicode validity."""
    stack: list[tuple[object, int]] = [(obj, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth >= limits.max_depth:
                raise ValueError(f"nested more than {limits.max_depth} levels deep")
            if isinstance(value, dict):
                if strings:
                    stack.extend((k, depth) for k in value)
                stack.extend((v, depth + 1) for v in value.values())
            else:
                stack.extend((v, depth + 1) for v in value)
        elif strings and isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError(f"{_surrogate_path(obj)} holds a lone surrogate, which is not Unicode text") from None


def _surrogate_path(obj: object) -> str:
    """The JSON path of the first string (or member name) holding a lone surrogate (only on the error path)."""
    stack: list[tuple[object, str]] = [(obj, "$")]
    while stack:
        value, path = stack.pop()
        if isinstance(value, dict):
            for k, v in value.items():
                if not k.isascii() and _bad_text(k):
                    return f"{path} (a member name)"
                stack.append((v, f"{path}.{k}"))
        elif isinstance(value, list):
            stack.extend((v, f"{path}[{i}]") for i, v in enumerate(value))
        elif isinstance(value, str) and _bad_text(value):
            return path
    return "a string"


def _bad_text(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


@functools.lru_cache(maxsize=16)
def _decoder(limits: JsonLimits) -> json.JSONDecoder:
    """One decoder per set of limits (``json.loads`` with hooks would build one per call)."""

    def bounded_int(text: str) -> int:
        value = int(text)
        if not limits.min_int <= value <= limits.max_int:
            raise ValueError(f"integer {text[:30]} is outside [{limits.min_int}, {limits.max_int}]")
        return value

    return json.JSONDecoder(
        parse_int=bounded_int, parse_float=_finite_float, parse_constant=_no_constant, object_pairs_hook=_unique
    )


def json_loads(data: bytes | str, what: str = "value", limits: JsonLimits = JSON_LIMITS) -> object:
    """Parse one JSON document (RFC 8259, UTF-8) within ``limits``: at most ``max_bytes``, containers nested
    at most ``max_depth`` deep, integers in ``[min_int, max_int]``, finite numbers only (no NaN, Infinity or
    overflowing exponents), no lone surrogates and no duplicate member names. Raises :class:`FormatError`
    saying which rule failed. The one JSON parser of the log and its verifiers."""

    try:
        raw = data.encode("utf-8") if isinstance(data, str) else data
        if len(raw) > limits.max_bytes:
            raise ValueError(f"it is {len(raw)} bytes; the limit is {limits.max_bytes}")
        obj = _decoder(limits).decode(raw.decode("utf-8"))
        strings = _SURROGATE_ESCAPE.search(raw) is not None
        # Fewer brackets than the depth limit cannot nest past it: the walk is needed only for text to check.
        if strings or raw.count(b"[") + raw.count(b"{") >= limits.max_depth:
            _check_tree(obj, limits, strings=strings)
    except RecursionError as exc:
        raise FormatError(f"{what} is not valid JSON: nested more than {limits.max_depth} levels deep") from exc
    except ValueError as exc:  # json.JSONDecodeError and UnicodeError are ValueErrors
        raise FormatError(f"{what} is not valid JSON: {exc}") from exc
    return obj
