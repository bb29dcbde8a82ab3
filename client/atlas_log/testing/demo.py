"""Demo submissions: distinct, validly signed (and, with a simulated platform, attested) entries for
development, benchmarks and tests."""

from __future__ import annotations

import os
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from atlas_log.submission import GpuEvidenceProvider, QuoteProvider, intoto_statement, signed_submission
from atlas_log.tdx.binding import ZERO_NONCE

__all__ = ["DEMO_PREDICATE", "demo_submission"]

DEMO_PREDICATE = "https://atlas-log.dev/demo/v1"


def demo_submission(
    key: Ed25519PrivateKey,
    n: int,
    platform: QuoteProvider | None = None,
    nonce: bytes = ZERO_NONCE,
    gpus: GpuEvidenceProvider | None = None,
) -> dict[str, Any]:
    """A distinct, validly signed demo entry: a statement about a random artifact.

    With a (simulated) quote ``platform``, the entry carries a quote bound to its payload and signer; with
    ``gpus`` too, the evidence of those GPUs under the composite binding.
    """
    digest = os.urandom(32).hex()
    # Named by its digest's start, so that artifacts of separate demo runs do not share a name.
    payload = intoto_statement([(f"demo-artifact-{digest[:8]}", digest)], DEMO_PREDICATE, {"sequence": n})
    return signed_submission(key, payload, platform, nonce, gpus=gpus)
