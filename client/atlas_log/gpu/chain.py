"""Certificate chains to a pinned root (RFC 5280 §6), as NVIDIA's device and RIM signing chains need them.

Path validation is split from the time check because a verdict names them apart (``chain_invalid`` versus
``certificate_not_yet_valid`` / ``certificate_expired``):

* the path: the chain must be given in order, leaf first, each certificate issued by the next (name chaining
  and signature, with ``cryptography``'s ``verify_directly_issued_by``), ending in a self-signed root; each
  issuer a CA allowed to sign certificates within its path length; no unprocessed critical extension
  (RFC 5280 §6.1.3-6.1.4); and a leaf keyUsage, when present, must allow digitalSignature (§4.2.1.3),
  because the leaf signs the evidence. ``cryptography.x509.verification`` is not used: it rejects NVIDIA's
  RIM signing certificates (pre-2050 validity dates encoded as GeneralizedTime, and no subjectAltName),
  which NVIDIA's own verifier accepts, and it cannot report the time apart from the path;
* the time: every certificate must satisfy ``notBefore ≤ t ≤ notAfter``, both ends inclusive (RFC 5280
  §4.1.2.5), for the evaluation time ``t`` the caller passes in.

A chain that stops short of the root is completed with the pinned root; a chain that ends in another root fails.

Whether one certificate is issued by another depends on nothing but their bytes, so it is memoised by them
(``cryptography`` certificates hash and compare by their DER): a GPU attests again and again with one chain,
its fleet shares every CA above its two per-device certificates, and these signature checks are most of a
verification's cost.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.x509.oid import ExtensionOID

from atlas_log.memo import IdentityMemo

__all__ = ["ChainCheck", "check_chain", "clear_issuance_cache"]

_MAX_DEPTH = 8  # the chains here have 4 or 5 certificates; a longer one is not NVIDIA's


@dataclass(frozen=True, slots=True)
class ChainCheck:
    """What was established about one chain. ``path_problem`` is None when the path is valid; the two time
    flags are independent of it (so every failure can be reported, not just the first)."""

    certificates: tuple[x509.Certificate, ...]
    path_problem: str | None
    not_yet_valid: bool
    expired: bool

    @property
    def failures(self) -> tuple[str, ...]:
        """``chain_invalid``, ``certificate_not_yet_valid``, ``certificate_expired``: those that apply, in that
        order (callers prefix them, e.g. ``driver_rim_``)."""
        out = []
        if self.path_problem is not None:
            out.append("chain_invalid")
        if self.not_yet_valid:
            out.append("certificate_not_yet_valid")
        if self.expired:
            out.append("certificate_expired")
        return tuple(out)


def _seconds(dt: datetime) -> int:
    return int(dt.timestamp())


@functools.lru_cache(maxsize=8192)
def _issued_by(child: x509.Certificate, parent: x509.Certificate) -> bool:
    try:
        child.verify_directly_issued_by(parent)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def clear_issuance_cache() -> None:
    """Forget every memoised issuance check and chain verdict (benchmarks measure the cold cost with it)."""
    _issued_by.cache_clear()
    _JUDGED.clear()


def _ordered_problem(chain: Sequence[x509.Certificate]) -> str | None:
    for child, parent in itertools.pairwise(chain):
        if not _issued_by(child, parent):
            return f"{child.subject.rfc4514_string()} is not issued by {parent.subject.rfc4514_string()}"
    try:
        usage = chain[0].extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return None
    return None if usage.digital_signature else "the leaf certificate's keyUsage does not allow signing"


_KNOWN_CRITICAL = frozenset(
    {
        ExtensionOID.BASIC_CONSTRAINTS,
        ExtensionOID.KEY_USAGE,
        ExtensionOID.EXTENDED_KEY_USAGE,
        ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
        ExtensionOID.SUBJECT_KEY_IDENTIFIER,
        ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
        ExtensionOID.CRL_DISTRIBUTION_POINTS,
        ExtensionOID.AUTHORITY_INFORMATION_ACCESS,
    }
)


def _profile_problem(chain: Sequence[x509.Certificate]) -> str | None:
    """RFC 5280 §6.1.3-6.1.4 for a path of CAs: (k) each issuer is a CA, (n) may sign certificates,
    (l, m) its pathLenConstraint covers the CAs below it, and (o) no certificate has a critical extension
    this check does not process."""
    if len(chain) > _MAX_DEPTH:
        return f"the chain has {len(chain)} certificates, more than {_MAX_DEPTH}"
    root = chain[-1]
    if not _issued_by(root, root):
        return "the root is not self-signed"
    for position, cert in enumerate(chain):
        for ext in cert.extensions:
            if ext.critical and ext.oid not in _KNOWN_CRITICAL:
                return f"{cert.subject.rfc4514_string()} has an unprocessed critical extension {ext.oid.dotted_string}"
        if position == 0:
            continue
        try:
            constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        except x509.ExtensionNotFound:
            return f"issuer {cert.subject.rfc4514_string()} has no basicConstraints"
        if not constraints.ca:
            return f"issuer {cert.subject.rfc4514_string()} is not a CA"
        if constraints.path_length is not None and position - 1 > constraints.path_length:
            return f"issuer {cert.subject.rfc4514_string()} allows {constraints.path_length} CAs below it"
        try:
            usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        except x509.ExtensionNotFound:
            continue
        if not usage.key_cert_sign:
            return f"issuer {cert.subject.rfc4514_string()} may not sign certificates"
    return None


def check_chain(certificates: Sequence[x509.Certificate], root: x509.Certificate, at: int) -> ChainCheck:
    """Check ``certificates`` (leaf first) to the pinned ``root`` at Unix time ``at``.

    Pure: no I/O, the time is an argument. Never raises for a bad chain; the result says what failed.
    """
    if not certificates:
        return ChainCheck((), "the chain is empty", False, False)
    chain = tuple(certificates)
    if chain[-1] is not root and chain[-1] != root:  # certificates compare by their DER
        chain = (*chain, root)
    problem, latest_start, earliest_end = _judged(chain)
    return ChainCheck(chain, problem, at < latest_start, at > earliest_end)


_JUDGED: IdentityMemo[tuple[str | None, int, int]] = IdentityMemo(4096)


def _judged(chain: tuple[x509.Certificate, ...]) -> tuple[str | None, int, int]:
    """What of a chain does not depend on the time: its path problem, and the window in which every one of its
    certificates is valid (the latest notBefore, the earliest notAfter). Memoised by the certificates'
    identity (hashing a chain costs more than finding it this way)."""
    return _JUDGED.remember(
        chain,
        lambda: (
            _ordered_problem(chain) or _profile_problem(chain),
            max(_seconds(c.not_valid_before_utc) for c in chain),
            min(_seconds(c.not_valid_after_utc) for c in chain),
        ),
    )
