"""Certificates from untrusted bytes: a serial number RFC 5280 forbids is a ValueError like any other defect,
never the library's warning (an exception where warnings are errors, as in this suite)."""

from __future__ import annotations

import base64
import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from atlas_log.certificates import load_der_certificate, load_pem_certificates
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
