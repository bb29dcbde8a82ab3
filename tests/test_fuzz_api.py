"""The HTTP API fuzzed with schemathesis against its own OpenAPI document: the document's example submission is
admitted; no input gets a 5xx; every answer conforms to the document (status, media type, schema); every error
is problem+json; a schema-valid submission is never refused for its structure; and nothing is written by a
rejected request."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

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


# Submissions the schema already rules out are refused for these reasons; a schema-valid body must never be.
STRUCTURAL = {"invalid-json", "invalid-submission", "unsupported-api-version", "invalid-envelope", "invalid-tee"}
CONFORMANCE = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
SUBMIT = ("POST", "/api/v1/entries")


def _problem_slug(response: httpx.Response | Any) -> str:
    return str(response.json().get("type", "")).rsplit("/", 1)[-1]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_no_input_gets_a_server_error(fuzzed_server: ServerProcess) -> None:
    schema = schemathesis.openapi.from_url(fuzzed_server.url + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 15
    submit = next(op for op in operations if (op.method.upper(), op.path) == SUBMIT)

    # The examples phase: the document's signed, attested example submission is admitted with a receipt
    # (the log runs in simulated-TDX mode, so its document carries one), and sent again, answered with it.
    content = schema.raw_schema["paths"]["/api/v1/entries"]["post"]["requestBody"]["content"]["application/json"]
    assert content.get("examples"), "the document carries no example submission"
    admitted = []
    for example in content["examples"].values():
        case = submit.Case(body=example["value"], media_type="application/json")
        for expected in (201, 200):
            response = case.call(base_url=fuzzed_server.url, timeout=30)
            assert response.status_code == expected, response.text
            case.validate_response(response, checks=CONFORMANCE)
            admitted.append(response.json()["logIndex"])
    assert set(admitted) == {0}

    for operation, mode in itertools.product(operations, schemathesis.GenerationMode):  # valid and invalid input
        try:
            _fuzz(fuzzed_server, operation, mode, positive_submission=mode is POSITIVE and operation is submit)
        except Unsatisfiable:  # an operation without parameters or body has no invalid input
            assert mode is not POSITIVE
    # No generated submission can carry a valid signature and quote: only the example was logged.
    assert httpx.get(fuzzed_server.url + "/api/v1/log").json()["treeSize"] == 1


POSITIVE = schemathesis.GenerationMode.POSITIVE


def _fuzz(server: ServerProcess, operation: Any, mode: schemathesis.GenerationMode, positive_submission: bool) -> None:
    @given(case=operation.as_strategy(mode))
    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
    def call(case: schemathesis.Case) -> None:
        for auth in ({}, {"Authorization": f"Bearer {ADMIN}"}):  # as anyone, and as the admin
            response = case.call(base_url=server.url, headers=auth, timeout=30)
            where = f"{case.method} {case.formatted_path} {case.query} {str(case.body)[:200]}"
            assert response.status_code < 500, f"{where}: {response.status_code} {response.text}"
            if response.status_code >= 400:
                content_type = response.headers.get("content-type") or [""]
                assert content_type[0].startswith("application/problem+json"), where
                assert "Traceback" not in response.text
            if positive_submission:
                # A body the schema accepts is admitted (generation also draws on the document's example) or
                # refused only for what no schema can state: its keys, signatures, certificates or statement,
                # or the TEE evidence and the log's policy.
                assert response.status_code < 300 or _problem_slug(response) not in STRUCTURAL, (
                    f"{where}: {response.status_code} {response.text[:300]}"
                )
            case.validate_response(response, checks=CONFORMANCE)

    call()
