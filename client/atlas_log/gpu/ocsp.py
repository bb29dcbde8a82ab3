"""Revocation of NVIDIA's device and RIM signing certificates from OCSP responses (RFC 6960), given as
collateral beside the evidence.

Pure: DER responses, the chain (leaf first, ending in its pinned root) and the evaluation time in; one
:class:`RevocationCheck` per certificate out. A response speaks for a certificate when its CertID names it
(RFC 6960 §4.1.1: the hashes of its issuer's name and key and its serial, under the hash the response names),
and is believed only when (§3.2, §4.2.2.2):

1. its signature verifies with the key of the certificate's issuer itself, or of a delegated responder
   certificate that the issuer signed directly, that carries the id-kp-OCSPSigning extended key usage and is
   valid at the evaluation time; the responder ID (name or key hash) names that key's certificate;
2. ``thisUpdate ≤ t`` (or up to :data:`MAX_CLOCK_SKEW_S` later: the responder's clock and the evaluation
   time are read on different machines), and ``t ≤ nextUpdate`` (a response without nextUpdate is current for
   :data:`MAX_AGE_WITHOUT_NEXT_UPDATE_S` after thisUpdate);
3. when the caller asked with a nonce, the response carries that nonce (RFC 8954).

What does not depend on the time — a response's parse, which certificate its CertID names, and whether its
signer is authorised and its signature holds — is memoised by the exact bytes: a log judges the same few
responses with every entry while they are current. So is a whole judgement of a chain, with the span of
time it holds for: every time rule above is a threshold (``t ≥ b`` for thisUpdate − skew, nextUpdate + 1, a
responder's notBefore and notAfter + 1), so between the nearest thresholds below and above ``t`` no verdict
can change, and one judged at any ``t`` in that span is the one for every other.

There is no third root: a responder is trusted only through the chain under judgement, which itself must end
in the pinned root. The root needs no response (it is the trust anchor); the device's attestation certificate,
issued by the GPU's own identity key rather than by NVIDIA, is not covered by NVIDIA's OCSP service and is
skipped (``skip_leaf``).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from atlas_log.certificates import checked_certificate, subject_text
from atlas_log.errors import GpuEvidenceError
from atlas_log.memo import IdentityMemo

__all__ = [
    "MAX_AGE_WITHOUT_NEXT_UPDATE_S",
    "MAX_CLOCK_SKEW_S",
    "RevocationCheck",
    "RevocationStatus",
    "check_revocation",
    "clear_ocsp_caches",
]

MAX_AGE_WITHOUT_NEXT_UPDATE_S = 24 * 3600
MAX_CLOCK_SKEW_S = 300
_MAX_RESPONSE_BYTES = 64 * 1024  # a response names a handful of certificates and perhaps its responder

RevocationStatus = Literal["good", "revoked", "on_hold", "unknown", "invalid", "missing"]


@dataclass(frozen=True, slots=True)
class RevocationCheck:
    """What OCSP said of one certificate: ``good``, ``revoked``, ``on_hold`` (revoked with reason
    certificateHold), ``unknown`` (the responder does not know it), ``invalid`` (a response names it but is not
    to be believed: ``problem`` says why) or ``missing`` (no response names it). Times are Unix seconds;
    ``response_sha256`` identifies the response that said it (hex SHA-256 of its DER)."""

    subject: str
    serial: str
    status: RevocationStatus
    this_update: int | None = None
    next_update: int | None = None
    revoked_at: int | None = None
    problem: str | None = None
    response_sha256: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "serial": self.serial,
            "status": self.status,
            "this_update": self.this_update,
            "next_update": self.next_update,
            "revoked_at": self.revoked_at,
            "problem": self.problem,
            "response_sha256": self.response_sha256,
        }


@functools.lru_cache(maxsize=1024)
def _parse(der: bytes) -> ocsp.OCSPResponse:
    if len(der) > _MAX_RESPONSE_BYTES:
        raise GpuEvidenceError("ocsp_parse_error", f"an OCSP response is {len(der)} bytes, over {_MAX_RESPONSE_BYTES}")
    try:
        response = ocsp.load_der_ocsp_response(der)
    except ValueError as exc:
        raise GpuEvidenceError("ocsp_parse_error", f"an OCSP response is not DER OCSPResponse: {exc}") from exc
    if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise GpuEvidenceError(
            "ocsp_parse_error", f"an OCSP response has status {response.response_status.name}, not successful"
        )
    return response


def _seconds(value: Any) -> int:
    return int(value.timestamp())


@functools.lru_cache(maxsize=4096)
def _cert_id_hashes(
    cert: x509.Certificate, issuer: x509.Certificate, algorithm: type[hashes.HashAlgorithm]
) -> tuple[bytes, bytes] | None:
    try:  # the request builder computes a CertID's hashes exactly as RFC 6960 §4.1.1 defines them
        wanted = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, algorithm()).build()
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return None
    return wanted.issuer_name_hash, wanted.issuer_key_hash


def _names(single: ocsp.OCSPSingleResponse, cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Whether ``single``'s CertID names ``cert`` as issued by ``issuer`` (under the response's own hash)."""
    if single.serial_number != cert.serial_number:
        return False
    return _cert_id_hashes(cert, issuer, type(single.hash_algorithm)) == (
        single.issuer_name_hash,
        single.issuer_key_hash,
    )


def _signed_by(response: ocsp.OCSPResponse, key: Any) -> bool:
    data, signature, digest = response.tbs_response_bytes, response.signature, response.signature_hash_algorithm
    try:
        if isinstance(key, ec.EllipticCurvePublicKey) and digest is not None:
            key.verify(signature, data, ec.ECDSA(digest))
        elif isinstance(key, rsa.RSAPublicKey) and digest is not None:
            key.verify(signature, data, padding.PKCS1v15(), digest)
        elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            key.verify(signature, data)
        else:
            return False
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return True


def _identifies(response: ocsp.OCSPResponse, cert: x509.Certificate) -> bool:
    if response.responder_name is not None:
        return bool(response.responder_name == cert.subject)
    key_hash = x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest  # SHA-1, §4.2.1
    return response.responder_key_hash == key_hash


def _responder_problem(response: ocsp.OCSPResponse, der: bytes, issuer: x509.Certificate, at: int) -> str | None:
    """None when the issuer, or a responder it authorised that is valid at ``at``, signed ``response`` (RFC
    6960 §4.2.2.2)."""
    problem, window = _responder(der, issuer)
    if problem is None and window is not None and not window[0] <= at <= window[1]:
        return "its responder certificate is not valid at the evaluation time"
    return problem


@functools.lru_cache(maxsize=1024)
def _responder(der: bytes, issuer: x509.Certificate) -> tuple[str | None, tuple[int, int] | None]:
    """What of the response's signer does not depend on the time: why it is not to be believed (None when it
    is), and a delegated responder's validity window, which the caller compares with its time."""
    response = _parse(der)
    if _identifies(response, issuer):
        return (None if _signed_by(response, issuer.public_key()) else "its signature does not verify"), None
    for delegate in response.certificates:
        try:
            checked_certificate(delegate)  # the response's certificates are the responder's bytes, not ours
        except ValueError:
            continue
        if not _identifies(response, delegate):
            continue
        try:
            delegate.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
            return "its responder certificate is not issued by the certificate's issuer", None
        try:
            usages = delegate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except x509.ExtensionNotFound:
            usages = x509.ExtendedKeyUsage([])
        if ExtendedKeyUsageOID.OCSP_SIGNING not in usages:
            return "its responder certificate is not authorised for OCSP signing", None
        if not _signed_by(response, delegate.public_key()):
            return "its signature does not verify", None
        return None, (_seconds(delegate.not_valid_before_utc), _seconds(delegate.not_valid_after_utc))
    return "it is signed by neither the certificate's issuer nor a responder certificate it carries", None


def _thresholds(single: ocsp.OCSPSingleResponse, der: bytes, issuer: x509.Certificate) -> tuple[int, ...]:
    """The times at which a verdict on ``single`` may change: each rule of :func:`_time_problem` and
    :func:`_responder_problem` flips where ``t`` reaches one of these."""
    this_update = _seconds(single.this_update_utc)
    next_update = single.next_update_utc
    end = this_update + MAX_AGE_WITHOUT_NEXT_UPDATE_S if next_update is None else _seconds(next_update)
    window = _responder(der, issuer)[1]
    responder = () if window is None else (window[0], window[1] + 1)
    return (this_update - MAX_CLOCK_SKEW_S, end + 1, *responder)


def _time_problem(single: ocsp.OCSPSingleResponse, at: int) -> str | None:
    this_update = _seconds(single.this_update_utc)
    if at + MAX_CLOCK_SKEW_S < this_update:
        return "it was produced after the evaluation time (thisUpdate is later)"
    next_update = single.next_update_utc
    end = this_update + MAX_AGE_WITHOUT_NEXT_UPDATE_S if next_update is None else _seconds(next_update)
    return "it is out of date at the evaluation time (past nextUpdate)" if at > end else None


def _nonce_problem(response: ocsp.OCSPResponse, nonce: bytes | None) -> str | None:
    if nonce is None:
        return None
    try:
        given = response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
    except x509.ExtensionNotFound:
        return "it carries no nonce, and one was asked for"
    return None if given == nonce else "its nonce is not the one asked for"


def _judge(
    single: ocsp.OCSPSingleResponse, cert: x509.Certificate, digest: str, problem: str | None
) -> RevocationCheck:
    subject, serial = subject_text(cert), str(cert.serial_number)
    this_update = _seconds(single.this_update_utc)
    next_update = None if single.next_update_utc is None else _seconds(single.next_update_utc)
    if problem is not None:
        return RevocationCheck(subject, serial, "invalid", this_update, next_update, None, problem, digest)
    given = single.certificate_status
    if given == ocsp.OCSPCertStatus.GOOD:
        return RevocationCheck(subject, serial, "good", this_update, next_update, response_sha256=digest)
    if given == ocsp.OCSPCertStatus.UNKNOWN:
        return RevocationCheck(subject, serial, "unknown", this_update, next_update, response_sha256=digest)
    revoked_at = None if single.revocation_time_utc is None else _seconds(single.revocation_time_utc)
    held = single.revocation_reason == x509.ReasonFlags.certificate_hold
    status: RevocationStatus = "on_hold" if held else "revoked"
    return RevocationCheck(subject, serial, status, this_update, next_update, revoked_at, response_sha256=digest)


_Answer = tuple[ocsp.OCSPResponse, ocsp.OCSPSingleResponse, bytes, str]


def _check_one(
    answers: dict[int, list[_Answer]],
    cert: x509.Certificate,
    issuer: x509.Certificate,
    at: int,
    nonce: bytes | None,
    thresholds: list[int],
) -> RevocationCheck:
    judged = []
    for response, single, der, digest in answers.get(cert.serial_number, ()):
        if _names(single, cert, issuer):
            thresholds.extend(_thresholds(single, der, issuer))
            problem = (
                _responder_problem(response, der, issuer, at)
                or _time_problem(single, at)
                or _nonce_problem(response, nonce)
            )
            judged.append(_judge(single, cert, digest, problem))
    if not judged:
        return RevocationCheck(subject_text(cert), str(cert.serial_number), "missing")
    believed = [j for j in judged if j.status != "invalid"]
    if not believed:
        return judged[0]
    # Several believable answers: a revocation outweighs any "good", else the newest answer stands.
    bad = [j for j in believed if j.status in ("revoked", "on_hold")]
    return bad[0] if bad else max(believed, key=lambda j: j.this_update or 0)


def clear_ocsp_caches() -> None:
    """Forget every memoised parse and signer verdict (benchmarks measure the cold cost with it)."""
    _parse.cache_clear()
    _digest.cache_clear()
    _cert_id_hashes.cache_clear()
    _responder.cache_clear()
    _JUDGED.clear()


# chain (by identity), (responses, skip_leaf, nonce) -> (from, until, checks): the checks hold for from <= t < until.
_JUDGED: IdentityMemo[tuple[float, float, tuple[RevocationCheck, ...]]] = IdentityMemo(1024)


def check_revocation(
    chain: Sequence[x509.Certificate],
    responses: Sequence[bytes],
    *,
    at: int,
    skip_leaf: bool = False,
    nonce: bytes | None = None,
) -> tuple[RevocationCheck, ...]:
    """What ``responses`` (DER OCSPResponse each) say of each certificate of ``chain`` (leaf first, ending in
    the root, whose path the caller has validated) at Unix time ``at``; the root, and the leaf when
    ``skip_leaf``, are not judged. Responses naming none of the chain are ignored. Raises
    :class:`GpuEvidenceError` ``ocsp_parse_error`` for a response that does not parse or is not successful."""
    given = tuple(bytes(r) for r in responses)
    key = (given, skip_leaf, nonce)
    hit = _JUDGED.get(chain, key)
    if hit is not None and hit[0] <= at < hit[1]:
        return hit[2]
    answers: dict[int, list[_Answer]] = {}  # every single response, by the serial its CertID names
    for raw in given:
        response, digest = _parse(raw), _digest(raw)
        for single in response.responses:
            answers.setdefault(single.serial_number, []).append((response, single, raw, digest))
    first = 1 if skip_leaf else 0
    thresholds: list[int] = []
    checks = tuple(
        _check_one(answers, chain[i], chain[i + 1], at, nonce, thresholds) for i in range(first, len(chain) - 1)
    )
    since = max((b for b in thresholds if b <= at), default=float("-inf"))
    until = min((b for b in thresholds if b > at), default=float("inf"))
    _JUDGED.put(chain, (since, until, checks), key)
    return checks


@functools.lru_cache(maxsize=1024)
def _digest(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()
