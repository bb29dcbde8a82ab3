"""Access control over HTTP: public reads, tenant tokens (hashed, scoped, revocable), admin, rate limits, quotas."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from atlas_log.testing.demo import demo_submission
from tests.conftest import ServerProcess

ADMIN = "atladm_test-admin-token-0123456789"


@pytest.fixture
def guarded(db_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    env = {
        "ATLAS_ALLOW_UNATTESTED": "true",
        "ATLAS_REQUIRE_TOKENS": "true",
        "ATLAS_ADMIN_TOKEN_SHA256": hashlib.sha256(ADMIN.encode()).hexdigest(),
    }
    s = ServerProcess(db_url, tmp_path / "data", env=env)
    yield s
    s.stop()


def _problem(r: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    assert r.headers["content-type"].startswith("application/problem+json")
    assert body["type"].endswith("/" + slug), body
    assert "Traceback" not in r.text and "/work/" not in r.text and "asyncpg" not in r.text
    return body


def test_reads_are_public_and_submissions_need_a_token(guarded: ServerProcess) -> None:
    key = Ed25519PrivateKey.generate()
    with httpx.Client(base_url=guarded.url, timeout=30) as http:
        assert http.get("/checkpoint").status_code == 200
        assert http.get("/api/v1/log").status_code == 200
        r = http.post("/api/v1/entries", json=demo_submission(key, 0))
        _problem(r, 401, "unauthorized")
        assert r.headers["www-authenticate"].startswith("Bearer")
        bad = {"Authorization": "Bearer atl_0123456789abcdef_" + "A" * 43}
        _problem(http.post("/api/v1/entries", json=demo_submission(key, 0), headers=bad), 401, "unauthorized")


def test_admin_needs_the_admin_token(guarded: ServerProcess) -> None:
    with httpx.Client(base_url=guarded.url, timeout=30) as http:
        spec = {"ratePerSecond": 10, "burst": 10}
        _problem(http.put("/admin/v1/tenants/a", json=spec), 401, "unauthorized")
        wrong = {"Authorization": "Bearer atladm_wrong"}
        _problem(http.put("/admin/v1/tenants/a", json=spec, headers=wrong), 401, "unauthorized")
        ok = {"Authorization": f"Bearer {ADMIN}"}
        assert http.put("/admin/v1/tenants/a", json=spec, headers=ok).status_code == 200
        _problem(
            http.put("/admin/v1/tenants/a", json={"ratePerSecond": -1, "burst": 1}, headers=ok), 400, "invalid-request"
        )
        _problem(http.post("/admin/v1/tenants/nobody/tokens", json={}, headers=ok), 404, "tenant-not-found")
        _problem(http.post("/admin/v1/tenants/a/tokens", json={"scopes": ["root"]}, headers=ok), 400, "invalid-request")
        typo = {**ok, "content-type": "application/json"}
        broken = _problem(
            http.put("/admin/v1/tenants/a", content=b'{"burst": 1,}', headers=typo), 400, "invalid-request"
        )
        assert broken["detail"].startswith("the request body is not JSON"), broken


def test_tokens_limits_quotas_and_revocation(guarded: ServerProcess, db_url: str) -> None:
    key = Ed25519PrivateKey.generate()
    admin = {"Authorization": f"Bearer {ADMIN}"}
    with httpx.Client(base_url=guarded.url, timeout=30) as http:
        assert http.put("/admin/v1/tenants/slow", json={"ratePerSecond": 0.2, "burst": 2}, headers=admin).is_success
        assert http.put(
            "/admin/v1/tenants/small", json={"ratePerSecond": 100, "burst": 100, "dailyQuota": 2}, headers=admin
        ).is_success
        slow = http.post("/admin/v1/tenants/slow/tokens", json={"scopes": ["submit"]}, headers=admin).json()
        small = http.post("/admin/v1/tenants/small/tokens", json={}, headers=admin).json()
        as_slow = {"Authorization": f"Bearer {slow['token']}"}
        as_small = {"Authorization": f"Bearer {small['token']}"}

        # Rate: a burst of 2, then 429 with the wait.
        assert http.post("/api/v1/entries", json=demo_submission(key, 0), headers=as_slow).status_code == 201
        assert http.post("/api/v1/entries", json=demo_submission(key, 1), headers=as_slow).status_code == 201
        r = http.post("/api/v1/entries", json=demo_submission(key, 2), headers=as_slow)
        _problem(r, 429, "rate-limited")
        assert 1 <= int(r.headers["retry-after"]) <= 5

        # Daily quota: 2, then 429 until the next UTC day.
        assert http.post("/api/v1/entries", json=demo_submission(key, 3), headers=as_small).status_code == 201
        assert http.post("/api/v1/entries", json=demo_submission(key, 4), headers=as_small).status_code == 201
        r = http.post("/api/v1/entries", json=demo_submission(key, 5), headers=as_small)
        _problem(r, 429, "quota-exceeded")
        assert 1 <= int(r.headers["retry-after"]) <= 86_400
        listed = {t["name"]: t for t in http.get("/admin/v1/tenants", headers=admin).json()["tenants"]}
        assert listed["small"]["usedToday"] == 2 and listed["small"]["tokens"] == [small["id"]]

        # Revocation takes effect (at once on the process that revoked it).
        assert http.delete(f"/admin/v1/tokens/{small['id']}", headers=admin).status_code == 204
        _problem(http.post("/api/v1/entries", json=demo_submission(key, 6), headers=as_small), 403, "token-revoked")
        _problem(http.delete("/admin/v1/tokens/0000000000000000", headers=admin), 404, "token-not-found")
        # A valid id with the wrong secret is not the token.
        forged = {"Authorization": f"Bearer atl_{slow['id']}_" + "B" * 43}
        _problem(http.post("/api/v1/entries", json=demo_submission(key, 7), headers=forged), 401, "unauthorized")

    # Only the SHA-256 of each secret is stored.
    async def stored() -> list[Any]:
        conn = await asyncpg.connect(db_url)
        try:
            return list(await conn.fetch("SELECT id, secret_sha256 FROM tokens"))
        finally:
            await conn.close()

    rows = {r["id"]: bytes(r["secret_sha256"]) for r in asyncio.run(stored())}
    for t in (slow, small):
        secret = t["token"][len("atl_") + 16 + 1 :]
        assert rows[t["id"]] == hashlib.sha256(secret.encode()).digest()
