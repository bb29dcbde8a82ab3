"""The local stand-in for NVIDIA's OCSP service: RFC 6960 requests by POST answered for every certificate the
simulated GPU's CAs issued (a sibling GPU's own device certificate included), signed by the issuing CA, good
or revoked as configured; requests it cannot answer get an unsuccessful response, never a 5xx."""

from __future__ import annotations

import time

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from atlas_log.gpu.ocsp import check_revocation
from atlas_log.testing.simulated_gpu import SimulatedGpu
from atlas_log_server.attest.ocsp_standin import create_ocsp_standin_app


@pytest.fixture(scope="module")
def gpu() -> SimulatedGpu:
    return SimulatedGpu.create()


async def _ask(app: object, body: bytes) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://ocsp") as http:
        return await http.post("/", content=body, headers={"Content-Type": "application/ocsp-request"})


def _request(cert: x509.Certificate, issuer: x509.Certificate, algorithm: hashes.HashAlgorithm) -> bytes:
    built = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, algorithm).build()
    return built.public_bytes(serialization.Encoding.DER)


# SHA-1 CertIDs are what RFC 5019 clients send: a responder must answer them.
@pytest.mark.parametrize("algorithm", [hashes.SHA1(), hashes.SHA256(), hashes.SHA384()])  # noqa: S303
async def test_every_ca_answers_for_what_it_issued(gpu: SimulatedGpu, algorithm: hashes.HashAlgorithm) -> None:
    sibling = gpu.sibling()
    revoked = {sibling.device_chain[1].serial_number}
    app = create_ocsp_standin_app([gpu], revoked=revoked)
    pairs = [(c[i], c[i + 1]) for c in (gpu.device_chain, sibling.device_chain) for i in range(1, len(c) - 1)]
    pairs += [(gpu.rim_chain[i], gpu.rim_chain[i + 1]) for i in range(len(gpu.rim_chain) - 1)]
    for cert, issuer in pairs:
        answer = await _ask(app, _request(cert, issuer, algorithm))
        assert answer.status_code == 200 and answer.headers["content-type"] == "application/ocsp-response"
        [check] = check_revocation([cert, issuer], [answer.content], at=int(time.time()))
        assert check.status == ("revoked" if cert.serial_number in revoked else "good"), check.problem


async def test_what_it_cannot_answer_is_an_unsuccessful_response(gpu: SimulatedGpu) -> None:
    app = create_ocsp_standin_app([gpu])
    stranger = SimulatedGpu.create()
    for body in (b"not DER", _request(stranger.device_chain[1], stranger.device_chain[2], hashes.SHA384())):
        answer = await _ask(app, body)
        assert answer.status_code == 200
        status = ocsp.load_der_ocsp_response(answer.content).response_status
        assert status in (ocsp.OCSPResponseStatus.MALFORMED_REQUEST, ocsp.OCSPResponseStatus.UNAUTHORIZED)
