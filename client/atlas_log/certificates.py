"""X.509 certificates from untrusted bytes: one loader, refusing what RFC 5280 forbids and the library only
warns about.

RFC 5280 §4.1.2.2: a certificate's serial number MUST be a positive integer. The ``cryptography`` library loads
one that is not, with a deprecation warning (an error under strict warning filters, so a test run and a
production run would differ). The library also parses a certificate's extensions and public key only when they
are first read, and then raises exceptions of its own (a malformed extension, one extension twice — which RFC
5280 §4.2 forbids —, a key on a curve it does not support). The loaders here read both at once and raise
:class:`ValueError` for all of it, as the library does for any other malformed certificate, so callers keep one
``except ValueError`` and a certificate that loads can be used without surprises.
"""

from __future__ import annotations

import functools

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.utils import CryptographyDeprecationWarning

from atlas_log.memo import IdentityMemo

__all__ = ["checked_certificate", "load_der_certificate", "load_pem_certificates", "load_pem_chain", "subject_text"]


# What the library raises for a certificate it loaded but cannot use; none of them is a ValueError.
_UNUSABLE = (
    CryptographyDeprecationWarning,
    x509.InvalidVersion,
    x509.DuplicateExtension,
    x509.UnsupportedGeneralNameType,
    UnsupportedAlgorithm,
)


def checked_certificate(cert: x509.Certificate) -> x509.Certificate:
    """``cert`` once its serial, extensions and public key have been read; :class:`ValueError` naming what is
    wrong otherwise (for certificates the library parsed elsewhere, such as an OCSP response's)."""
    try:
        serial = cert.serial_number
        _ = cert.extensions
        cert.public_key()
    except _UNUSABLE as exc:
        raise ValueError(f"the certificate cannot be used: {exc}") from exc
    except ValueError as exc:
        raise ValueError(f"the certificate is malformed: {exc}") from exc
    if serial <= 0:
        raise ValueError("the certificate's serial number is not positive (RFC 5280 section 4.1.2.2)")
    return cert


def load_der_certificate(data: bytes) -> x509.Certificate:
    """One DER certificate; :class:`ValueError` when malformed."""
    try:
        cert = x509.load_der_x509_certificate(data)
    except _UNUSABLE as exc:
        raise ValueError(str(exc)) from exc
    return checked_certificate(cert)


def load_pem_certificates(data: bytes) -> list[x509.Certificate]:
    """PEM certificates in order; :class:`ValueError` when malformed."""
    try:
        certs = x509.load_pem_x509_certificates(data)
    except _UNUSABLE as exc:
        raise ValueError(str(exc)) from exc
    return [checked_certificate(c) for c in certs]


_SUBJECTS: IdentityMemo[str] = IdentityMemo(4096)


def subject_text(cert: x509.Certificate) -> str:
    """The certificate's subject as an RFC 4514 string (memoised: verdicts name the same few certificates)."""
    return _SUBJECTS.remember((cert,), cert.subject.rfc4514_string)


@functools.lru_cache(maxsize=1024)
def load_pem_chain(data: bytes) -> tuple[x509.Certificate, ...]:
    """:func:`load_pem_certificates` as a tuple, memoised by the bytes (a device presents one chain again and
    again); :class:`ValueError` when malformed."""
    return tuple(load_pem_certificates(data))
