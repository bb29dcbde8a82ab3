"""Certificates from untrusted bytes: a serial number RFC 5280 forbids, an extension that does not parse or
a key on a curve the library does not support — each a ValueError when the certificate is
loaded, never the library's own warning or exception later, where a verifier reads the extension or the key."""

from __future__ import annotations

import base64
import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtensionOID, NameOID

from atlas_log.certificates import checked_certificate, load_der_certificate, load_pem_certificates
from atlas_log.dsse import sign_envelope
from atlas_log.errors import QuoteError, SubmissionError
from atlas_log.submission import INTOTO_PAYLOAD_TYPE, intoto_statement, parse_submission
from atlas_log.tdx.pki import load_chain

_KEY = ec.generate_private_key(ec.SECP256R1())


def _der(serial_byte: int) -> bytes:
    """A self-signed certificate whose one-byte serial number is re-encoded as ``serial_byte`` (0xff: -1)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "t")])
    start = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(_KEY.public_key())
        .serial_number(0x7F)
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=1))
        .sign(_KEY, hashes.SHA256())
    )
    der = cert.public_bytes(serialization.Encoding.DER)
    at = der.index(bytes([2, 1, 0x7F]))
    return der[:at] + bytes([2, 1, serial_byte]) + der[at + 3 :]


def _pem(der: bytes) -> bytes:
    return b"-----BEGIN CERTIFICATE-----\n" + base64.encodebytes(der) + b"-----END CERTIFICATE-----\n"


@pytest.mark.parametrize("serial", [0x00, 0xFF], ids=["zero", "negative"])
def test_a_serial_number_that_is_not_positive_is_a_value_error(serial: int) -> None:
    with pytest.raises(ValueError, match="serial"):
        load_der_certificate(_der(serial))
    with pytest.raises(ValueError, match="serial"):
        load_pem_certificates(_pem(_der(serial)))


def test_a_certificate_of_no_known_version_is_a_value_error() -> None:
    # cryptography raises its own InvalidVersion, which is not a ValueError: it must not leak.
    der = _der(0x7F)
    at = der.index(bytes([0xA0, 3, 2, 1, 2]))
    bad = der[: at + 4] + bytes([7]) + der[at + 5 :]
    with pytest.raises(ValueError, match="version"):
        load_der_certificate(bad)
    with pytest.raises(ValueError, match="version"):
        load_pem_certificates(_pem(bad))


def test_a_positive_serial_number_loads() -> None:
    assert load_der_certificate(_der(0x7F)).serial_number == 0x7F
    assert [c.serial_number for c in load_pem_certificates(_pem(_der(0x7F)) * 2)] == [0x7F, 0x7F]


def test_parsers_of_untrusted_input_answer_with_their_own_errors() -> None:
    """A submission's X.509 chain and a quote's PCK chain holding such a certificate are typed refusals."""
    with pytest.raises(QuoteError) as quote_error:
        load_chain(_pem(_der(0xFF)), "PCK certificate chain")
    assert quote_error.value.code == "certificate-chain-invalid"
    payload = intoto_statement([("model.pt", "ab" * 32)], "https://atlas-log.dev/test/v1", {})
    submission = {
        "dsseEnvelope": sign_envelope(INTOTO_PAYLOAD_TYPE, payload, _KEY).to_json(),
        "verificationMaterial": {"x509CertificateChain": [base64.b64encode(_der(0xFF)).decode()]},
    }
    with pytest.raises(SubmissionError):
        parse_submission(submission, 1_767_225_600, [load_der_certificate(_der(0x7F))])


_P384 = ec.generate_private_key(ec.SECP384R1())


def _usable_only_until_read(case: str) -> bytes:
    """DER of a self-signed certificate that the library loads and fails on only when a verifier reads its
    extensions (a keyUsage that is not a BIT STRING) or its key (secp384r1 renamed secp160k1, an OID of the
    same length, which the library does not support)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "t")])
    start = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(_P384.public_key())
        .serial_number(0x7F)
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=1))
    )
    if case == "malformed extension":
        builder = builder.add_extension(x509.UnrecognizedExtension(ExtensionOID.KEY_USAGE, b"\x05\x00"), False)
    der = builder.sign(_P384, hashes.SHA384()).public_bytes(serialization.Encoding.DER)
    if case == "unsupported curve":
        der = der.replace(bytes.fromhex("06052b81040022"), bytes.fromhex("06052b81040009"), 1)
    return der


@pytest.mark.parametrize("case", ["malformed extension", "unsupported curve"])
def test_a_certificate_unusable_once_read_is_refused_when_loaded(case: str) -> None:
    der = _usable_only_until_read(case)
    with pytest.raises(ValueError, match="certificate"):
        load_der_certificate(der)
    with pytest.raises(ValueError, match="certificate"):
        load_pem_certificates(_pem(der))
    with pytest.raises(ValueError, match="certificate"):  # one the library parsed elsewhere (an OCSP response's)
        checked_certificate(x509.load_der_x509_certificate(der))
