"""Certificate chains to a pinned root (RFC 5280 §6), as NVIDIA's device and RIM signing chains need them.

Path validation is split from the time check because a verdict names them apart (``chain_invalid`` versus
``certificate_not_yet_valid`` / ``certificate_expired``):

* the path — names chained, signatures, basicConstraints, keyUsage, path length, critical extensions — is
  judged by ``cryptography.x509.verification`` at an instant inside every certificate's validity window, with
  the end-entity profile relaxed (RIM signer certificates carry no subjectAltName, which the web-PKI profile
  demands); on top, the chain must be given in order, leaf first, each certificate issued by the next
  (RFC 5280 §6.1: a prospective path is a sequence), and a leaf keyUsage, when present, must allow
  digitalSignature (RFC 5280 §4.2.1.3), because the leaf signs the evidence;
* the time: every certificate must satisfy ``notBefore ≤ t ≤ notAfter``, both ends inclusive (RFC 5280
  §4.1.2.5), for the evaluation time ``t`` the caller passes in.

A chain that stops short of the root is completed with the pinned root; a chain that ends in another root fails.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.x509.verification import ExtensionPolicy, PolicyBuilder, Store, VerificationError

__all__ = ["ChainCheck", "check_chain"]

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


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def _seconds(dt: datetime) -> int:
    return int(dt.timestamp())


def _ordered_problem(chain: Sequence[x509.Certificate]) -> str | None:
    for child, parent in zip(chain, chain[1:], strict=False):
        try:
            child.verify_directly_issued_by(parent)
        except (ValueError, TypeError, InvalidSignature):
            return f"{child.subject.rfc4514_string()} is not issued by {parent.subject.rfc4514_string()}"
    try:
        usage = chain[0].extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return None
    return None if usage.digital_signature else "the leaf certificate's keyUsage does not allow signing"


def _policy_problem(chain: Sequence[x509.Certificate], root: x509.Certificate) -> str | None:
    # Any instant inside every window judges the path alone; the caller's time is judged separately.
    instant = max(c.not_valid_before_utc for c in chain)
    if instant > min(c.not_valid_after_utc for c in chain):
        return "the certificates' validity periods do not overlap"
    verifier = (
        PolicyBuilder()
        .store(Store([root]))
        .time(instant)
        .max_chain_depth(_MAX_DEPTH)
        .extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=ExtensionPolicy.permit_all())
        .build_client_verifier()
    )
    try:
        verifier.verify(chain[0], list(chain[1:-1]))
    except VerificationError as exc:
        return str(exc)
    return None


def check_chain(certificates: Sequence[x509.Certificate], root: x509.Certificate, at: int) -> ChainCheck:
    """Check ``certificates`` (leaf first) to the pinned ``root`` at Unix time ``at``.

    Pure: no I/O, the time is an argument. Never raises for a bad chain; the result says what failed.
    """
    if not certificates:
        return ChainCheck((), "the chain is empty", False, False)
    chain = list(certificates)
    if _der(chain[-1]) != _der(root):
        chain.append(root)
    problem = _ordered_problem(chain) or _policy_problem(chain, root)
    return ChainCheck(
        tuple(chain),
        problem,
        any(at < _seconds(c.not_valid_before_utc) for c in chain),
        any(at > _seconds(c.not_valid_after_utc) for c in chain),
    )

