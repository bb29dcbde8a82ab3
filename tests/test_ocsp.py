"""The server's OCSP store against a real PostgreSQL: responses asked of an OCSP service (the stand-in of
NVIDIA's, served in process), judged before they are kept, stored raw and append-only, cached, asked again
before they run out, kept through an outage while current, and never taken from a responder the certificate's
issuer did not authorise."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from atlas_log.errors import CollateralFetchError
from atlas_log.testing.simulated_gpu import SimulatedGpu
from atlas_log_server.attest.ocsp import OcspStore, certificate_key
from atlas_log_server.attest.ocsp_standin import OCSP_LIFETIME_S, create_ocsp_standin_app
from atlas_log_server.db.engine import create_pool
from atlas_log_server.db.ocsp import OcspRepository
from tests.test_rims import Clock, Counting


@pytest.fixture(scope="module")
def gpu() -> SimulatedGpu:
    return SimulatedGpu.create()


@pytest.fixture
async def pool(db_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await create_pool(db_url, 4)
    yield p
    await p.close()


def _store(pool: asyncpg.Pool, transport: httpx.AsyncBaseTransport, clock: Clock) -> OcspStore:
    http = httpx.AsyncClient(transport=transport)
    return OcspStore(OcspRepository(pool), http, "http://ocsp/", 86_400, clock=clock)


async def test_a_response_is_asked_once_judged_stored_raw_and_served_after_a_restart(
    pool: asyncpg.Pool, gpu: SimulatedGpu
) -> None:
    clock = Clock(gpu.created + 3600)
    transport = Counting(create_ocsp_standin_app([gpu], clock=clock))
    store = _store(pool, transport, clock)
    brom, provisioner = gpu.device_chain[1], gpu.device_chain[2]
    got = await store.get(brom, provisioner)
    assert transport.requests == 1 and got.next_update - got.this_update == OCSP_LIFETIME_S
    single = next(ocsp.load_der_ocsp_response(got.response).responses)
    assert single.serial_number == brom.serial_number and single.certificate_status == ocsp.OCSPCertStatus.GOOD
    assert await store.get(brom, provisioner) == got and store.cached(brom, provisioner) == got
    assert transport.requests == 1
    row = await pool.fetchrow("SELECT * FROM gpu_ocsp WHERE digest = $1", got.digest)
    assert row is not None and bytes(row["response"]) == got.response
    assert row["certificate"] == certificate_key(brom, provisioner)
    for statement in ("UPDATE gpu_ocsp SET response = 'x'", "DELETE FROM gpu_ocsp"):
        with pytest.raises(asyncpg.PostgresError, match="append-only"):
            await pool.execute(statement)
    # Another process (a restart) finds it in PostgreSQL, and auditors get it by digest.
    again = _store(pool, transport, clock)
    assert await again.get(brom, provisioner) == got and transport.requests == 1
    assert await again.by_digest(got.digest) == got


async def test_refreshed_before_it_runs_out_and_kept_through_an_outage(pool: asyncpg.Pool, gpu: SimulatedGpu) -> None:
    clock = Clock(gpu.created + 7200)
    transport = Counting(create_ocsp_standin_app([gpu], clock=clock))
    store = _store(pool, transport, clock)
    signer, ca = gpu.rim_chain[0], gpu.rim_chain[1]
    first = await store.get(signer, ca)
    clock.now = first.next_update - 3600  # within the refresh margin
    assert await store.refresh_once() == 1
    renewed = await store.get(signer, ca)
    assert renewed.this_update > first.this_update and transport.requests == 2
    # The service goes down: what is held serves while it is current, and the service is not hammered.
    transport.down = True
    clock.now = renewed.next_update - 3600
    assert await store.get(signer, ca) == renewed
    asked = transport.requests
    assert await store.get(signer, ca) == renewed and transport.requests == asked
    clock.now = renewed.next_update + 1  # nothing current any more
    with pytest.raises(CollateralFetchError):
        await store.get(signer, ca)


async def test_an_answer_the_issuer_did_not_sign_is_never_kept(pool: asyncpg.Pool, gpu: SimulatedGpu) -> None:
    """A service that answers for the certificate with another PKI's key (another GPU's CAs): refused, nothing
    stored, and a malformed or unsuccessful answer likewise."""
    clock = Clock(gpu.created + 3600)
    stranger = SimulatedGpu.create()
    brom, provisioner = gpu.device_chain[1], gpu.device_chain[2]

    async def forged(request: httpx.Request) -> httpx.Response:
        # The CA of another GPU signs a "good" for our certificate's CertID.
        asked = ocsp.load_der_ocsp_request(request.content)
        now = dt.datetime.fromtimestamp(clock.now, dt.UTC)
        response = (
            ocsp.OCSPResponseBuilder()
            .add_response_by_hash(
                asked.issuer_name_hash,
                asked.issuer_key_hash,
                asked.serial_number,
                asked.hash_algorithm,
                ocsp.OCSPCertStatus.GOOD,
                now,
                now + dt.timedelta(days=7),
                None,
                None,
            )
            .responder_id(ocsp.OCSPResponderEncoding.HASH, stranger.device_chain[2])
            .sign(stranger.device_keys[2], hashes.SHA384())
        )
        return httpx.Response(200, content=response.public_bytes(serialization.Encoding.DER))

    unsuccessful = ocsp.OCSPResponseBuilder.build_unsuccessful(ocsp.OCSPResponseStatus.INTERNAL_ERROR)
    answers = [forged, lambda r: httpx.Response(200, content=b"junk")]
    answers.append(lambda r: httpx.Response(200, content=unsuccessful.public_bytes(serialization.Encoding.DER)))
    for handler in answers:
        store = _store(pool, httpx.MockTransport(handler), clock)  # type: ignore[arg-type]
        with pytest.raises(CollateralFetchError):
            await store.get(brom, provisioner)
    assert await pool.fetchval("SELECT count(*) FROM gpu_ocsp") == 0


async def test_a_revoked_answer_is_kept_for_the_appraisal_to_hear(pool: asyncpg.Pool, gpu: SimulatedGpu) -> None:
    clock = Clock(gpu.created + 3600)
    brom, provisioner = gpu.device_chain[1], gpu.device_chain[2]
    store = _store(pool, Counting(create_ocsp_standin_app([gpu], revoked={brom.serial_number}, clock=clock)), clock)
    got = await store.get(brom, provisioner)
    assert next(ocsp.load_der_ocsp_response(got.response).responses).certificate_status == ocsp.OCSPCertStatus.REVOKED


class _Replaying(httpx.AsyncBaseTransport):
    """Answers every request with the first answer it got from ``inner`` (an attacker on the way to the OCSP
    service replaying an old response), or with ``fixed`` when set."""

    def __init__(self, inner: httpx.AsyncBaseTransport, fixed: bytes | None = None) -> None:
        self.inner, self.first, self.fixed = inner, fixed, fixed

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.first is None:
            answer = await self.inner.handle_async_request(request)
            self.first = await answer.aread()
        return httpx.Response(200, content=self.first, headers={"Content-Type": "application/ocsp-response"})


async def test_a_response_is_asked_for_with_a_nonce_and_a_replayed_one_is_refused(
    pool: asyncpg.Pool, gpu: SimulatedGpu
) -> None:
    """The log asks with a fresh nonce (RFC 8954), which the service echoes: an older response replayed to the
    log echoes another request's nonce and is refused. One without a nonce (a responder's cache) is judged by
    its window alone."""
    clock = Clock(gpu.created + 3600)
    brom, provisioner = gpu.device_chain[1], gpu.device_chain[2]
    replaying = _Replaying(httpx.ASGITransport(app=create_ocsp_standin_app([gpu], clock=clock)))  # type: ignore[arg-type]
    first = await _store(pool, replaying, clock).get(brom, provisioner)
    echoed = ocsp.load_der_ocsp_response(first.response).extensions.get_extension_for_class(x509.OCSPNonce)
    assert len(echoed.value.nonce) == 32  # asked with one, and it came back
    await pool.execute("TRUNCATE gpu_ocsp")  # as for a certificate the log has not asked about yet
    with pytest.raises(CollateralFetchError, match="another request's nonce"):
        await _store(pool, replaying, clock).get(brom, provisioner)
    plain = gpu.ocsp_response("device", 1, now=clock())  # for the BROM CA, without a nonce
    assert await _store(pool, _Replaying(replaying.inner, plain), clock).get(brom, provisioner)
