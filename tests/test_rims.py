"""The server's RIM store against a real PostgreSQL: RIMs fetched from a RIM service (the stand-in of NVIDIA's,
served in process), verified before they are kept, stored raw and append-only, cached, refreshed before their
signing chain expires, and never taken from a service that answers with something else."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Callable

import asyncpg
import httpx
import pytest

from atlas_log.errors import CollateralFetchError
from atlas_log.testing.simulated_gpu import SimulatedGpu
from atlas_log_server.attest.rim_standin import create_rim_standin_app, simulated_rims
from atlas_log_server.attest.rims import RimStore
from atlas_log_server.db.engine import create_pool
from atlas_log_server.db.rims import RimRepository

YEAR = 365 * 86_400


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Counting(httpx.AsyncBaseTransport):
    """A transport in front of an ASGI app that counts requests and can be taken down."""

    def __init__(self, app: Callable[..., object]) -> None:
        self.inner = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        self.requests = 0
        self.down = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        if self.down:
            raise httpx.ConnectError("the RIM service is down", request=request)
        return await self.inner.handle_async_request(request)


@pytest.fixture(scope="module")
def gpu() -> SimulatedGpu:
    return SimulatedGpu.create()


@pytest.fixture
async def pool(db_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await create_pool(db_url, 4)
    yield p
    await p.close()


def _store(pool: asyncpg.Pool, transport: httpx.AsyncBaseTransport, gpu: SimulatedGpu, clock: Clock) -> RimStore:
    http = httpx.AsyncClient(transport=transport, base_url="http://rims")
    return RimStore(RimRepository(pool), http, "http://rims", gpu.rim_root, 30 * 86_400, clock=clock)


async def test_a_rim_is_fetched_once_verified_stored_raw_and_served_after_a_restart(
    pool: asyncpg.Pool, gpu: SimulatedGpu
) -> None:
    rims = simulated_rims([gpu])
    transport, clock = Counting(create_rim_standin_app(rims)), Clock(gpu.created + 3600)
    store = _store(pool, transport, gpu, clock)
    driver_id, vbios_id = gpu.rim_ids
    got = await store.get(driver_id)
    assert got is not None and got.document == rims[driver_id] and transport.requests == 1
    assert (await store.get(driver_id)) == got and transport.requests == 1  # from memory
    row = await pool.fetchrow("SELECT * FROM gpu_rims WHERE digest = $1", got.digest)
    assert row is not None and bytes(row["document"]) == rims[driver_id] and row["rim_id"] == driver_id
    assert row["not_before"] <= clock.now < row["not_after"]
    # A restarted server (a new store) has it from PostgreSQL, without asking the service.
    again = _store(pool, transport, gpu, clock)
    assert (await again.get(driver_id)) == got and transport.requests == 1
    assert (await again.by_digest(got.digest)) == got
    # Kept as it was fetched: the table refuses to change or lose it.
    for statement in ("UPDATE gpu_rims SET document = 'x'", "DELETE FROM gpu_rims"):
        with pytest.raises(asyncpg.PostgresError):
            await pool.execute(statement)
    assert (await store.get(vbios_id)) is not None


async def test_an_unknown_rim_is_none_and_not_asked_for_again_at_once(pool: asyncpg.Pool, gpu: SimulatedGpu) -> None:
    transport, clock = Counting(create_rim_standin_app(simulated_rims([gpu]))), Clock(gpu.created + 3600)
    store = _store(pool, transport, gpu, clock)
    assert await store.get("NV_GPU_DRIVER_GH100_1.2.3") is None
    assert await store.get("NV_GPU_DRIVER_GH100_1.2.3") is None
    assert transport.requests == 1
    clock.now += 600
    assert await store.get("NV_GPU_DRIVER_GH100_1.2.3") is None
    assert transport.requests == 2


def _answering(body: Callable[[str], dict[str, object]]) -> httpx.MockTransport:
    """A RIM service that answers with ``body(rim_id)``: a service that lies or is broken."""
    return httpx.MockTransport(lambda r: httpx.Response(200, json=body(r.url.path.rsplit("/", 1)[1])))


async def test_a_service_that_answers_with_something_else_is_not_believed(
    pool: asyncpg.Pool, gpu: SimulatedGpu
) -> None:
    rims = simulated_rims([gpu])
    driver_id, vbios_id = gpu.rim_ids
    stranger = SimulatedGpu.create()  # its RIMs are signed under another CoRIM root
    foreign = stranger.driver_rim()

    def b64(document: bytes) -> str:
        return base64.b64encode(document).decode()

    lies: list[Callable[[str], dict[str, object]]] = [
        lambda rid: {"id": rid, "rim": b64(rims[driver_id]), "sha256": "0" * 64},  # not the stated digest
        lambda rid: {"id": vbios_id, "rim": b64(rims[vbios_id])},  # another RIM
        lambda rid: {"id": rid, "rim": "not base64!"},
        lambda rid: {"id": rid},
        lambda rid: {"id": rid, "rim": b64(foreign)},  # signed, but not under the trusted CoRIM root
        lambda rid: {"id": rid, "rim": b64(b"<not a RIM/>")},
    ]
    clock = Clock(gpu.created + 3600)
    for lie in lies:
        store = _store(pool, _answering(lie), gpu, clock)
        with pytest.raises(CollateralFetchError):
            await store.get(driver_id)
    assert await pool.fetchval("SELECT count(*) FROM gpu_rims") == 0
    not_json = httpx.MockTransport(lambda r: httpx.Response(200, content=b"<html>maintenance</html>"))
    with pytest.raises(CollateralFetchError):
        await _store(pool, not_json, gpu, clock).get(driver_id)
    failing = httpx.MockTransport(lambda r: httpx.Response(503, json={"title": "busy"}))
    with pytest.raises(CollateralFetchError):
        await _store(pool, failing, gpu, clock).get(driver_id)


async def test_a_service_outage_is_ridden_out_with_what_is_stored_and_rims_are_refreshed_before_expiry(
    pool: asyncpg.Pool,
) -> None:
    gpu = SimulatedGpu.create(rim_years=1)
    driver_id, _ = gpu.rim_ids
    transport, clock = Counting(create_rim_standin_app(simulated_rims([gpu]))), Clock(gpu.created + 3600)
    store = _store(pool, transport, gpu, clock)
    first = await store.get(driver_id)
    assert first is not None
    # Within the refresh margin of its chain's expiry, the refresh asks the service again.
    assert await store.refresh_once() == 0
    clock.now = first.not_after - 10 * 86_400
    assert await store.refresh_once() == 1 and transport.requests == 2
    # A new process while the service is down: the stored RIM is still valid, so it is used.
    transport.down = True
    later = _store(pool, transport, gpu, clock)
    assert (await later.get(driver_id)) is not None
    assert await later.refresh_once() == 0  # the failure is logged, nothing lost
    # Once it has expired, nothing stored stands in for it.
    clock.now = first.not_after + 1
    with pytest.raises(CollateralFetchError):
        await _store(pool, transport, gpu, clock).get(driver_id)


def test_the_store_is_one_per_process_and_safe_under_concurrency(db_url: str, gpu: SimulatedGpu) -> None:
    async def run() -> int:
        p = await create_pool(db_url, 4)
        try:
            transport = Counting(create_rim_standin_app(simulated_rims([gpu])))
            store = _store(p, transport, gpu, Clock(gpu.created + 3600))
            got = await asyncio.gather(*(store.get(gpu.rim_ids[0]) for _ in range(20)))
            assert len({g.digest for g in got if g is not None}) == 1
            return transport.requests
        finally:
            await p.close()

    assert asyncio.run(run()) == 1  # twenty admissions at once ask the service once
