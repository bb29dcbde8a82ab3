"""A minimal DER reader and writer, enough for the Intel SGX certificate extension (OID 1.2.840.113741.1.13.1)."""

from __future__ import annotations

from dataclasses import dataclass

SEQUENCE = 0x30
INTEGER = 0x02
OCTET_STRING = 0x04
OID = 0x06
ENUMERATED = 0x0A


class DerError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Tlv:
    tag: int
    value: bytes


def read_all(data: bytes) -> list[Tlv]:
    """Split ``data`` into consecutive TLVs (definite lengths only, as DER demands)."""
    out, i = [], 0
    while i < len(data):
        if i + 2 > len(data):
            raise DerError("truncated TLV header")
        tag, first = data[i], data[i + 1]
        i += 2
        if first < 0x80:
            length = first
        else:
            n = first & 0x7F
            if n == 0 or n > 4 or i + n > len(data):
                raise DerError("bad length encoding")
            length = int.from_bytes(data[i : i + n], "big")
            i += n
        if i + length > len(data):
            raise DerError("TLV runs past its container")
        out.append(Tlv(tag, data[i : i + length]))
        i += length
    return out


def decode_int(value: bytes) -> int:
    if not value:
        raise DerError("empty INTEGER")
    return int.from_bytes(value, "big", signed=True)


# --- writer (used by the simulated platform to build PCK certificates) -----------------------------


def tlv(tag: int, value: bytes) -> bytes:
    n = len(value)
    if n < 0x80:
        return bytes([tag, n]) + value
    size = (n.bit_length() + 7) // 8
    return bytes([tag, 0x80 | size]) + n.to_bytes(size, "big") + value


def encode_oid(oid: str) -> bytes:
    nums = [int(x) for x in oid.split(".")]
    out = bytearray([40 * nums[0] + nums[1]])
    for n in nums[2:]:
        chunk = [n & 0x7F]
        n >>= 7
        while n:
            chunk.append(0x80 | (n & 0x7F))
            n >>= 7
        out.extend(reversed(chunk))
    return tlv(OID, bytes(out))


def encode_int(n: int) -> bytes:
    size = max(1, (n.bit_length() + 8) // 8)
    return tlv(INTEGER, n.to_bytes(size, "big", signed=True))
