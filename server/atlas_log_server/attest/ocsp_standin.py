"""A local stand-in for NVIDIA's OCSP service: answers RFC 6960 requests for the certificates the CAs of
simulated GPUs issued, signed by the issuing CA itself.

NVIDIA's service (``https://ocsp.ndis.nvidia.com``, named in its attestation documentation) takes an
``OCSPRequest`` by HTTP POST (``Content-Type: application/ocsp-request``, RFC 6960 Appendix A.1) and answers
``application/ocsp-response``. The stand-in does the same: a request's CertID is matched against every CA of
the GPUs it serves (device chain and RIM chain), so it answers for any certificate those CAs issued — the
per-device certificates of every sibling GPU included — with ``good``, or ``revoked`` for the serials in
``revoked``; a CertID no CA matches is answered ``unauthorized`` (RFC 6960 §2.3). ``GET /healthz`` answers
when it is up.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Callable, Collection, Iterable
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

if TYPE_CHECKING:
    from atlas_log.testing.simulated_gpu import SimulatedGpu

__all__ = ["OCSP_LIFETIME_S", "create_ocsp_standin_app"]

OCSP_LIFETIME_S = 7 * 86_400
_RESPONSE = "application/ocsp-response"
_MAX_REQUEST = 16 * 1024


def _issuers(gpus: Iterable[SimulatedGpu]) -> list[tuple[x509.Certificate, ec.EllipticCurvePrivateKey]]:
    """Every CA of these GPUs with its key: those above each chain's leaf."""
    out: dict[bytes, tuple[x509.Certificate, ec.EllipticCurvePrivateKey]] = {}
    for gpu in gpus:
        for chain, keys in ((gpu.device_chain, gpu.device_keys), (gpu.rim_chain, gpu.rim_keys)):
            for cert, key in list(zip(chain, keys, strict=True))[1:]:
                out.setdefault(cert.public_bytes(serialization.Encoding.DER), (cert, key))
    return list(out.values())


def _digest(algorithm: hashes.HashAlgorithm, data: bytes) -> bytes:
    h = hashes.Hash(algorithm)
    h.update(data)
    return h.finalize()


def _matches(request: ocsp.OCSPRequest, issuer: x509.Certificate) -> bool:
    """Whether the request's CertID names ``issuer``: the hashes of its DER name and of its public key's bits
    (for these EC keys, the uncompressed point), under the request's hash (RFC 6960 §4.1.1)."""
    key = issuer.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    point = key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    algorithm = request.hash_algorithm
    return (_digest(algorithm, issuer.subject.public_bytes()), _digest(algorithm, point)) == (
        request.issuer_name_hash,
        request.issuer_key_hash,
    )


def create_ocsp_standin_app(
    gpus: Iterable[SimulatedGpu],
    *,
    revoked: Collection[int] = (),
    clock: Callable[[], float] = time.time,
) -> Starlette:
    """A Starlette app answering OCSP requests (POST ``/``) for certificates the CAs of ``gpus`` issued;
    the serials in ``revoked`` (read at each request, so a test may change it) are answered revoked."""
    issuers = _issuers(gpus)

    async def answer(request: Request) -> Response:
        body = await request.body()
        if len(body) > _MAX_REQUEST:
            return _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
        try:
            asked = ocsp.load_der_ocsp_request(body)
        except ValueError:
            return _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
        for issuer, key in issuers:
            if _matches(asked, issuer):
                return _response(asked, issuer, key, asked.serial_number in revoked, int(clock()))
        return _unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("OCSP stand-in\n")

    return Starlette(routes=[Route("/", answer, methods=["POST"]), Route("/healthz", healthz)])


def _time(t: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(t, dt.UTC)


def _response(
    asked: ocsp.OCSPRequest, issuer: x509.Certificate, key: ec.EllipticCurvePrivateKey, revoked: bool, now: int
) -> Response:
    status = ocsp.OCSPCertStatus.REVOKED if revoked else ocsp.OCSPCertStatus.GOOD
    builder = (
        ocsp.OCSPResponseBuilder()
        .add_response_by_hash(
            issuer_name_hash=asked.issuer_name_hash,
            issuer_key_hash=asked.issuer_key_hash,
            serial_number=asked.serial_number,
            algorithm=asked.hash_algorithm,
            cert_status=status,
            this_update=_time(now),
            next_update=_time(now + OCSP_LIFETIME_S),
            revocation_time=_time(now - 60) if revoked else None,
            revocation_reason=x509.ReasonFlags.key_compromise if revoked else None,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, issuer)
    )
    with contextlib.suppress(x509.ExtensionNotFound):  # a nonce asked for is echoed (RFC 8954)
        builder = builder.add_extension(asked.extensions.get_extension_for_class(x509.OCSPNonce).value, False)
    der = builder.sign(key, hashes.SHA384()).public_bytes(serialization.Encoding.DER)
    return Response(der, media_type=_RESPONSE)


def _unsuccessful(status: ocsp.OCSPResponseStatus) -> Response:
    der = ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(serialization.Encoding.DER)
    return Response(der, media_type=_RESPONSE)
