"""REPORTDATA binding: how a TDX quote commits to exactly one log entry (or to a pipeline run's key).

payload mode (``atlas-log/tdx-bind/v1``), one quote per entry::

    REPORTDATA = SHA-512("atlas-log/tdx-bind/v1" ‖ 0x00 ‖ SHA-256(PAE(payloadType, payload))
                         ‖ SHA-256(signer SPKI DER) ‖ nonce32)

key mode (``atlas-log/tdx-key/v1``), one quote attests a TD-resident signing key for a whole run::

    REPORTDATA = SHA-512("atlas-log/tdx-key/v1" ‖ 0x00 ‖ SHA-256(SPKI DER) ‖ nonce32 ‖ 32 × 0x00)

composite mode (``atlas-log/tdx-gpu-bind/v1``), one quote and the evidence of every GPU that did the work::

    GPU nonce  = SHA-256("atlas-log/gpu-nonce/v1" ‖ 0x00 ‖ SHA-256(PAE(payloadType, payload))
                         ‖ SHA-256(signer SPKI DER) ‖ nonce32)
    REPORTDATA = SHA-512("atlas-log/tdx-gpu-bind/v1" ‖ 0x00 ‖ SHA-256(PAE(payloadType, payload))
                         ‖ SHA-256(signer SPKI DER) ‖ nonce32 ‖ SHA-256(GPU evidence collection))

Every GPU's SPDM request carries the GPU nonce, so its report was made for this entry; the quote then commits
to the reports themselves (:func:`atlas_log.gpu.evidence.collection_sha256`), so none can be swapped or dropped.

``nonce32`` is 32 zero bytes, or the root hash of a recent checkpoint (the quote was made after that tree).
"""

from __future__ import annotations

import hashlib

from atlas_log.dsse import pae

__all__ = [
    "GPU_TAG",
    "KEY_TAG",
    "PAYLOAD_TAG",
    "ZERO_NONCE",
    "composite_report_data",
    "gpu_nonce",
    "key_report_data",
    "payload_report_data",
]

PAYLOAD_TAG = "atlas-log/tdx-bind/v1"
KEY_TAG = "atlas-log/tdx-key/v1"
GPU_TAG = "atlas-log/tdx-gpu-bind/v1"
GPU_NONCE_TAG = "atlas-log/gpu-nonce/v1"
ZERO_NONCE = bytes(32)


def _statement(payload_type: str, payload: bytes, spki_der: bytes, nonce: bytes) -> bytes:
    if len(nonce) != 32:
        raise ValueError("the binding nonce is 32 bytes")
    return hashlib.sha256(pae(payload_type, payload)).digest() + hashlib.sha256(spki_der).digest() + nonce


def gpu_nonce(payload_type: str, payload: bytes, spki_der: bytes, nonce: bytes = ZERO_NONCE) -> bytes:
    """The 32-byte nonce every GPU's SPDM GET_MEASUREMENTS request carries in composite mode."""
    statement = _statement(payload_type, payload, spki_der, nonce)
    return hashlib.sha256(GPU_NONCE_TAG.encode() + b"\x00" + statement).digest()


def composite_report_data(
    payload_type: str, payload: bytes, spki_der: bytes, gpu_evidence_sha256: bytes, nonce: bytes = ZERO_NONCE
) -> bytes:
    """The 64-byte REPORTDATA binding one DSSE payload, its signer and the GPU evidence collection."""
    if len(gpu_evidence_sha256) != 32:
        raise ValueError("the GPU evidence digest is 32 bytes")
    return hashlib.sha512(
        GPU_TAG.encode() + b"\x00" + _statement(payload_type, payload, spki_der, nonce) + gpu_evidence_sha256
    ).digest()


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
