"""The PCS client against a real stand-in process and against scripted failures; the collateral store."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from atlas_log.errors import CollateralFetchError
from atlas_log.tdx.collateral import collateral_from_dir
from atlas_log.tdx.pcs import PcsClient
from atlas_log.tdx.verification import verify_quote
from atlas_log.testing.simulate import SimulatedPlatform
from atlas_log_server.attest.store import CollateralStore
from atlas_log_server.db.collateral import CollateralRepository
from atlas_log_server.db.engine import create_pool
from tests.conftest import free_port
from tests.vectors import vector_files

CASES = sorted({p.parent for p in vector_files("tdx", pattern="case.json")})


@pytest.fixture(scope="module")
def standin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, SimulatedPlatform]]:
    folder = tmp_path_factory.mktemp("sim")
    platform = SimulatedPlatform.create()
    platform.save(folder)
    port = free_port()
    args = [
        sys.executable,
        "-m",
        "atlas_log_server.cli",
        "pcs-standin",
        "--port",
        str(port),
        "--simulated",
        f"sim={folder}",
    ]
    for case in CASES:
        args += ["--folder", f"{case.name}={case}"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.get(url + "/sim/sgx/certification/v4/rootcacrl", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.05)
    yield url, platform
    proc.terminate()
    proc.wait(10)


async def _fetch(base: str, fmspc: str) -> object:
    async with httpx.AsyncClient() as http:
        pcs = PcsClient(http, base, base + "/sgx/certification/v4/rootcacrl")
        return await pcs.collateral(fmspc)


def test_real_collateral_round_trips_through_the_standin(standin: tuple[str, SimulatedPlatform]) -> None:
    url, _ = standin
    if not CASES:
        pytest.skip("TDX vectors absent")
    for case in CASES:
        want = collateral_from_dir(case)
        import json

        fmspc = json.loads(want.tcb_info)["tcbInfo"]["fmspc"]
        got = asyncio.run(_fetch(f"{url}/{case.name}", fmspc))
        assert got == want  # byte-exact bodies, chains decoded from URL-encoded headers


def test_simulated_collateral_over_http_verifies(standin: tuple[str, SimulatedPlatform]) -> None:
    url, platform = standin
    coll = asyncio.run(_fetch(f"{url}/sim", platform.fmspc.hex()))
    v = verify_quote(platform.quote(), coll, int(time.time()), roots=[platform.root_fingerprint])  # type: ignore[arg-type]
    assert v.accept, v
    with pytest.raises(CollateralFetchError) as e:
        asyncio.run(_fetch(f"{url}/sim", "FFFFFFFFFFFF"))
    assert e.value.status == 404


def _scripted(statuses: list[int], retry_after: str = "0") -> tuple[httpx.MockTransport, list[int]]:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        status = statuses[min(len(calls) - 1, len(statuses) - 1)]
        if status == 200:
            return httpx.Response(200, content=b"ok", headers={"SGX-Enclave-Identity-Issuer-Chain": "a%20b"})
        return httpx.Response(status, headers={"Retry-After": retry_after})

    return httpx.MockTransport(handler), calls


@pytest.mark.parametrize(
    ("statuses", "ok", "calls_made"),
    [
        ([503, 200], True, 2),
        ([429, 429, 200], True, 3),
        ([429, 429, 429], False, 3),
        ([404], False, 1),
    ],
)
def test_retries_and_errors(statuses: list[int], ok: bool, calls_made: int) -> None:
    transport, calls = _scripted(statuses)

    async def run() -> tuple[bytes, bytes]:
        async with httpx.AsyncClient(transport=transport) as http:
            return await PcsClient(http, "http://pcs").qe_identity()

    if ok:
        assert asyncio.run(run()) == (b"ok", b"a b")
    else:
        with pytest.raises(CollateralFetchError) as e:
            asyncio.run(run())
        assert e.value.status == statuses[-1]
        if statuses[-1] == 429:
            assert e.value.retry_after == 0
    assert len(calls) == calls_made


def test_long_retry_after_is_reported_not_slept() -> None:
    transport, calls = _scripted([429], retry_after="3600")

    async def run() -> None:
        async with httpx.AsyncClient(transport=transport) as http:
            await PcsClient(http, "http://pcs").qe_identity()

    with pytest.raises(CollateralFetchError) as e:
        asyncio.run(run())
    assert e.value.retry_after == 3600 and len(calls) == 1


def test_store_caches_persists_and_refreshes(standin: tuple[str, SimulatedPlatform], db_url: str) -> None:
    url, platform = standin
    clock = [float(time.time())]

    async def run() -> None:
        pool = await create_pool(db_url, 4)
        async with httpx.AsyncClient() as http:
            pcs = PcsClient(http, url + "/sim", url + "/sim/sgx/certification/v4/rootcacrl")
            repo = CollateralRepository(pool)
            store = CollateralStore(repo, pcs, [platform.root_fingerprint], 3 * 86400, clock=lambda: clock[0])
            fmspc = platform.fmspc.hex().upper()
            first = await store.get(fmspc, "platform")
            assert await store.get(fmspc, "platform") is first
            assert await pool.fetchval("SELECT count(*) FROM pcs_collateral") == 1
            # A new process finds it in PostgreSQL without asking PCS.
            offline = CollateralStore(
                repo,
                PcsClient(http, "http://127.0.0.1:9"),
                [platform.root_fingerprint],
                3 * 86400,
                clock=lambda: clock[0],
            )
            assert await offline.get(fmspc, "platform") == first
            assert await offline.by_digest(first.digest) == first
            # Near expiry, the refresher fetches again (the stand-in reissues daily).
            clock[0] += 28 * 86400
            fresh_issue = await store.refresh_once()
            assert fresh_issue == 1 and store.freshness()[f"{fmspc}/platform"] > 0
        await pool.close()

    asyncio.run(run())


def test_store_never_serves_expired_collateral(tmp_path: Path, db_url: str) -> None:
    platform = SimulatedPlatform.create(int(time.time()) - 40 * 86400)
    old = platform.collateral()

    class Stale(PcsClient):
        async def collateral(self, fmspc: str, ca: str = "platform"):  # type: ignore[no-untyped-def]
            return old

    async def run() -> None:
        pool = await create_pool(db_url, 2)
        async with httpx.AsyncClient() as http:
            store = CollateralStore(CollateralRepository(pool), Stale(http), [platform.root_fingerprint], 3 * 86400)
            with pytest.raises(CollateralFetchError, match="expired"):
                await store.get(platform.fmspc.hex(), "platform")
        await pool.close()

    asyncio.run(run())


def test_server_fetches_collateral_over_http_from_a_standin(db_url: str, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from atlas_log.testing.demo import demo_submission
    from tests.conftest import ServerProcess

    data = tmp_path / "data"
    platform = SimulatedPlatform.create()
    platform.save(data / "simulated-tdx")
    port = free_port()
    standin = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "atlas_log_server.cli",
            "pcs-standin",
            "--port",
            str(port),
            "--simulated",
            f"={data / 'simulated-tdx'}",
        ],
        stdout=subprocess.DEVNULL,
    )
    server = ServerProcess(db_url, data, env={"ATLAS_PCS_URL": f"http://127.0.0.1:{port}"})
    try:
        assert server.platform.root_fingerprint == platform.root_fingerprint
        r = httpx.post(
            server.url + "/api/v1/entries", json=demo_submission(Ed25519PrivateKey.generate(), 1, platform), timeout=60
        )
        assert r.status_code == 201, r.text
        info = httpx.get(server.url + "/api/v1/log").json()["attestation"]
        assert info["pcsUrl"] == f"http://127.0.0.1:{port}"
    finally:
        server.stop()
        standin.terminate()
        standin.wait(10)


def test_unreachable_pcs_is_a_503_with_retry_after(db_url: str, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from atlas_log.testing.demo import demo_submission
    from tests.conftest import ServerProcess

    down = ServerProcess(db_url, tmp_path / "down", env={"ATLAS_PCS_URL": "http://127.0.0.1:9"})
    try:
        sub = demo_submission(Ed25519PrivateKey.generate(), 1, down.platform)
        r = httpx.post(down.url + "/api/v1/entries", json=sub, timeout=60)
        assert r.status_code == 503 and r.json()["type"].endswith("/collateral-unavailable")
        assert int(r.headers["retry-after"]) > 0
        assert httpx.get(down.url + "/api/v1/log").json()["treeSize"] == 0
    finally:
        down.stop()
