"""Admission: turn a submitted JSON body into a verified entry, or a problem naming what to fix.

The pipeline runs in order: schema and size, DSSE signatures over PAE, then each configured gate (the
TEE quote check slots in here), then the canonical leaf. Nothing is written before every step passed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from cryptography import x509

from atlas_log.bundle import CODE_SIGNING
from atlas_log.entry import (
    LINKED_ROLES,
    MAX_LEAF_SIZE,
    build_body,
    encode_body,
    index_summary,
)
from atlas_log.errors import SubmissionError
from atlas_log.submission import ParsedSubmission, parse_submission
from atlas_log_server.errors import Problem
from atlas_log_server.log.sequencer import PendingEntry

Gate = Callable[[ParsedSubmission, int], Awaitable[dict[str, Any] | None]]
"""An admission step after the signature check, given the admission time; returns what the leaf records
under ``tee`` (or None), or raises :class:`Problem`."""


def _reject(slug: str, detail: str, status: int = 400) -> Problem:
    return Problem(status, slug, detail)


class Admission:
    """The ordered admission pipeline."""

    def __init__(
        self, gates: Sequence[Gate], x509_roots: Sequence[x509.Certificate] = (), x509_eku: str = CODE_SIGNING
    ) -> None:
        self.gates = tuple(gates)
        self.x509_roots = tuple(x509_roots)
        self.x509_eku = x509_eku

    def parse(self, raw: bytes, now: int) -> ParsedSubmission:
        """Schema, signature (and certificate chain) and statement checks."""
        try:
            # The bytes, not a pre-parsed object: the JSON is parsed by the one parser, within the one set
            # of limits, that replay and verify-evidence use (atlas_log._encoding.json_loads).
            return parse_submission(raw, now, self.x509_roots, self.x509_eku)
        except SubmissionError as exc:
            # A chain that does not lead to a trusted root is well formed but unacceptable.
            raise _reject(exc.code, exc.message, 422 if exc.code == "certificate-untrusted" else 400) from exc

    async def admit(self, raw: bytes, now: int) -> PendingEntry:
        """Run the whole pipeline; the result is ready for the sequencer."""
        sub = self.parse(raw, now)
        tee: dict[str, Any] | None = None
        for gate in self.gates:
            verdict = await gate(sub, now)
            if verdict is not None:
                tee = verdict
        ex = sub.extraction
        body, eid = encode_body(build_body(sub.envelope, sub.signers, tee, index_summary(ex)))
        linked = tuple(ex.digests(*LINKED_ROLES))
        # The leaf adds the integration time and one back-link per linked digest: bound its size now, so a
        # batch never meets an entry it cannot encode.
        bound = len(body) + sum(len(d) + 24 for d in linked) + 64
        if bound > MAX_LEAF_SIZE:
            raise _reject(
                "entry-too-large",
                f"the entry's leaf would be about {bound} bytes; the limit is "
                f"{MAX_LEAF_SIZE} (fewer signatures, subjects or materials per entry)",
                413,
            )
        facts = tuple((f"{a}:{h}", f.role, f.name, f.path, f.version) for f in ex.facts for a, h in f.digests)
        # Signer keys are indexed like artifacts, so "everything this key signed" is one lookup.
        facts += tuple(
            (f"sha256:{k.fingerprint}", "signer", None, f"$.signatures[{i}]", None) for i, k in enumerate(sub.signers)
        )
        return PendingEntry(eid, body, raw, now, linked, facts, ex.predicate_type)
