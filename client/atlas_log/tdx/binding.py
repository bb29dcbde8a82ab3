"""REPORTDATA binding: how a TDX quote commits to exactly one log entry (or to a pipeline run's key).

payload mode (``atlas-log/tdx-bind/v1``), one quote per entry::

    REPORTDATA = SHA-512("atlas-log/tdx-bind/v1" ‖ 0x00 ‖ SHA-256(PAE(payloadType, payload))
                         ‖ SHA-256(signer SPKI DER) ‖ nonce32)

key mode (``atlas-log/tdx-key/v1``), one quote attests a TD-resident signing key for a whole run::

    REPORTDATA = SHA-512("atlas-log/tdx-key/v1" ‖ 0x00 ‖ SHA-256(SPKI DER) ‖ nonce32 ‖ 32 × 0x00)

``nonce32`` is 32 zero bytes, or the root hash of a recent checkpoint (the quote was made after that tree).
"""

from __future__ import annotations

import hashlib

from atlas_log.dsse import pae

__all__ = ["KEY_TAG", "PAYLOAD_TAG", "ZERO_NONCE", "key_report_data", "payload_report_data"]

PAYLOAD_TAG = "atlas-log/tdx-bind/v1"
KEY_TAG = "atlas-log/tdx-key/v1"
ZERO_NONCE = bytes(32)


def payload_report_data(payload_type: str, payload: bytes, spki_der: bytes, nonce: bytes = ZERO_NONCE) -> bytes:
    """The 64-byte REPORTDATA binding one DSSE payload and its signer."""
    if len(nonce) != 32:
        raise ValueError("the binding nonce is 32 bytes")
    return hashlib.sha512(
        PAYLOAD_TAG.encode()
        + b"\x00"
        + hashlib.sha256(pae(payload_type, payload)).digest()
        + hashlib.sha256(spki_der).digest()
        + nonce
    ).digest()


def key_report_data(spki_der: bytes, nonce: bytes = ZERO_NONCE) -> bytes:
    """The 64-byte REPORTDATA attesting a TD-resident signing key."""
    if len(nonce) != 32:
        raise ValueError("the binding nonce is 32 bytes")
    return hashlib.sha512(KEY_TAG.encode() + b"\x00" + hashlib.sha256(spki_der).digest() + nonce + bytes(32)).digest()
