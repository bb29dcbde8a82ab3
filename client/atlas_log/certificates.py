"""X.509 certificates from untrusted bytes: one loader, refusing what RFC 5280 forbids and the library only
warns about.

RFC 5280 §4.1.2.2: a certificate's serial number MUST be a positive integer. The ``cryptography`` library loads
one that is not, with a deprecation warning (an error under strict warning filters, so a test run and a
production run would differ). Both loaders here raise :class:`ValueError` instead, as the library does for any
other malformed certificate, so callers keep one ``except ValueError``.
"""

from __future__ import annotations

import functools

from cryptography import x509
from cryptography.utils import CryptographyDeprecationWarning

from atlas_log.memo import IdentityMemo

__all__ = ["load_der_certificate", "load_pem_certificates", "load_pem_chain", "subject_text"]


def _positive_serial(cert: x509.Certificate) -> x509.Certificate:
    if cert.serial_number <= 0:
        raise ValueError("the certificate's serial number is not positive (RFC 5280 section 4.1.2.2)")
    return cert


def load_der_certificate(data: bytes) -> x509.Certificate:
    """One DER certificate; :class:`ValueError` when malformed."""
    try:
        return _positive_serial(x509.load_der_x509_certificate(data))
    except (CryptographyDeprecationWarning, x509.InvalidVersion) as exc:  # neither is a ValueError
        raise ValueError(str(exc)) from exc


def load_pem_certificates(data: bytes) -> list[x509.Certificate]:
    """PEM certificates in order; :class:`ValueError` when malformed."""
    try:
        return [_positive_serial(c) for c in x509.load_pem_x509_certificates(data)]
    except (CryptographyDeprecationWarning, x509.InvalidVersion) as exc:
        raise ValueError(str(exc)) from exc


_SUBJECTS: IdentityMemo[str] = IdentityMemo(4096)


def subject_text(cert: x509.Certificate) -> str:
    """The certificate's subject as an RFC 4514 string (memoised: verdicts name the same few certificates)."""
    return _SUBJECTS.remember((cert,), cert.subject.rfc4514_string)


@functools.lru_cache(maxsize=1024)
def load_pem_chain(data: bytes) -> tuple[x509.Certificate, ...]:
    """:func:`load_pem_certificates` as a tuple, memoised by the bytes (a device presents one chain again and
    again); :class:`ValueError` when malformed."""
    return tuple(load_pem_certificates(data))
