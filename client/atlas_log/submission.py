"""Building the JSON body of ``POST /api/v1/entries``."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from atlas_log._encoding import b64encode
from atlas_log.dsse import Envelope, sign_envelope
from atlas_log.entry import API_VERSION
from atlas_log.tdx.binding import PAYLOAD_TAG, ZERO_NONCE, payload_report_data
from atlas_log.tdx.simulate import SimulatedPlatform

__all__ = [
    "INTOTO_PAYLOAD_TYPE",
    "build_submission",
    "demo_submission",
    "intoto_statement",
    "signed_submission",
    "spki_der",
    "tdx_tee",
]

INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
DEMO_PREDICATE = "https://atlas-log.dev/demo/v1"


def spki_der(key: Ed25519PrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    """The DER SubjectPublicKeyInfo of a private key's public half."""
    return key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def build_submission(envelope: Envelope, public_keys: Sequence[bytes], **extra: Any) -> dict[str, Any]:
    """The request body for an envelope and the DER SPKIs of its signers."""
    return {
        "apiVersion": API_VERSION,
        "dsseEnvelope": envelope.to_json(),
        "verificationMaterial": {"publicKeys": [{"spki": b64encode(k)} for k in public_keys]},
        **extra,
    }


def intoto_statement(subjects: Sequence[tuple[str, str]], predicate_type: str, predicate: dict[str, Any]) -> bytes:
    """An in-toto Statement v1 (JSON bytes); ``subjects`` are ``(name, sha256 hex)`` pairs."""
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": name, "digest": {"sha256": digest}} for name, digest in subjects],
        "predicateType": predicate_type,
        "predicate": predicate,
    }
    return json.dumps(statement, separators=(",", ":"), sort_keys=True).encode()


def tdx_tee(quote: bytes, *, binding: str = PAYLOAD_TAG, nonce: bytes = ZERO_NONCE) -> dict[str, Any]:
    """The ``tee`` block of a submission carrying a TDX quote."""
    return {"type": "intel-tdx", "quote": b64encode(quote), "binding": binding, "nonce": nonce.hex()}


def demo_submission(
    key: Ed25519PrivateKey, n: int, platform: SimulatedPlatform | None = None, nonce: bytes = ZERO_NONCE
) -> dict[str, Any]:
    """A distinct, validly signed demo entry: a statement about a random artifact.

    With a simulated TDX ``platform``, the entry carries a quote bound to its payload and signer.
    """
    digest = os.urandom(32).hex()
    payload = intoto_statement([(f"demo-artifact-{n}", digest)], DEMO_PREDICATE, {"sequence": n})
    return signed_submission(key, payload, platform, nonce)


def signed_submission(
    key: Ed25519PrivateKey,
    payload: bytes,
    platform: SimulatedPlatform | None = None,
    nonce: bytes = ZERO_NONCE,
    payload_type: str = INTOTO_PAYLOAD_TYPE,
) -> dict[str, Any]:
    """Sign ``payload`` into a submission; with a simulated ``platform``, attach a quote bound to it."""
    spki = spki_der(key)
    extra = {}
    if platform is not None:
        rd = payload_report_data(payload_type, payload, spki, nonce)
        extra["tee"] = tdx_tee(platform.quote(rd), nonce=nonce)
    return build_submission(sign_envelope(payload_type, payload, key), [spki], **extra)
