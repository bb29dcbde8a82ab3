"""The HTTP API fuzzed with schemathesis against its own OpenAPI document: no input gets a 5xx, every error is
problem+json, and nothing is written by a rejected request."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import os
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable

from tests.conftest import ServerProcess, _admin, with_database

ADMIN = "atladm_fuzz-admin-token"


@pytest.fixture(scope="module")
def fuzzed_server(pg_url: str, template_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    name = f"atlas_fuzz_{os.getpid()}"
    asyncio.run(_admin(pg_url, f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"'))
    env = {"ATLAS_ADMIN_TOKEN_SHA256": hashlib.sha256(ADMIN.encode()).hexdigest(), "ATLAS_LOG_LEVEL": "warning"}
    server = ServerProcess(with_database(pg_url, name), tmp_path_factory.mktemp("fuzz") / "data", env=env)
    yield server
    server.stop()
    asyncio.run(_admin(pg_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_no_input_gets_a_server_error(fuzzed_server: ServerProcess) -> None:
    schema = schemathesis.openapi.from_url(fuzzed_server.url + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 15
    for operation, mode in itertools.product(operations, schemathesis.GenerationMode):  # valid and invalid input

        @given(case=operation.as_strategy(mode))
        @settings(
            max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None
        )
        def call(case: schemathesis.Case) -> None:
            for auth in ({}, {"Authorization": f"Bearer {ADMIN}"}):  # as anyone, and as the admin
                response = case.call(base_url=fuzzed_server.url, headers=auth, timeout=30)
                where = f"{case.method} {case.formatted_path} {case.query} {str(case.body)[:200]}"
                assert response.status_code < 500, f"{where}: {response.status_code} {response.text}"
                if response.status_code >= 400:
                    content_type = response.headers.get("content-type") or [""]
                    assert content_type[0].startswith("application/problem+json"), where
                    assert "Traceback" not in response.text

        try:
            call()
        except Unsatisfiable:  # an operation without parameters or body has no invalid input
            assert mode is schemathesis.GenerationMode.NEGATIVE
    # No fuzzed submission can carry a valid signature and quote: nothing was logged.
    assert httpx.get(fuzzed_server.url + "/api/v1/log").json()["treeSize"] == 0
