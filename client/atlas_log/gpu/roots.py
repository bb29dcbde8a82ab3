"""NVIDIA's two trust anchors, pinned by the SHA-256 of their DER certificates (NVIDIA's SDK pins exactly
these two). The root certificates themselves arrive at the end of every device chain and every RIM's
KeyInfo; a verifier needs only these fingerprints to recognise them."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import serialization

__all__ = ["CORIM_ROOT_SHA256", "DEVICE_IDENTITY_ROOT_SHA256", "certificate_sha256", "pinned_root"]

# "NVIDIA Device Identity CA": the root of every GPU device certificate chain.
DEVICE_IDENTITY_ROOT_SHA256 = "102bf659d5419614c9d8e6aecebc80454eb26b1df6a769ac720b9a690b167b48"
# "NVIDIA CoRIM signing Root CA": the root of every RIM signing chain.
CORIM_ROOT_SHA256 = "12977b5115acb0381179279fffeb5a8c4d264971ebb32298023a465fa41df5d1"


def certificate_sha256(cert: x509.Certificate) -> str:
    """Hex SHA-256 of the DER certificate."""
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def pinned_root(chain: Sequence[x509.Certificate], fingerprint: str) -> x509.Certificate | None:
    """The certificate of ``chain`` whose fingerprint is ``fingerprint`` (the chain's last one, as it is
    given root last), or None when the chain does not carry the pinned root."""
    return chain[-1] if chain and certificate_sha256(chain[-1]) == fingerprint else None
