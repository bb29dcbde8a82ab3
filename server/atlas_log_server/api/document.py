"""The published contract: the OpenAPI document at ``/openapi.json`` and the ``/docs`` page that renders it.

The document is generated from the routes, plus what the framework cannot see: the submission body (read
raw by its route) comes from :mod:`atlas_log.schema`, the schema the parser's tests hold it to; errors are
problem+json; and a log in simulated-TDX mode carries a real signed, attested example submission, so anyone
(and the API fuzzer) can submit it and get a receipt. ``/docs`` is Swagger UI served from the
``swagger-ui-bundle`` package: it works offline and loads nothing from another origin.
"""

from __future__ import annotations

import logging
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from atlas_log.schema import submission_definitions, submission_schema
from atlas_log_server.api.schemas import COMPONENTS, Problem
from atlas_log_server.config import Settings

__all__ = ["DOCS_ASSETS", "install_document", "openapi_document"]

DOCS_ASSETS = "/docs/assets"
SUBMIT_PATH = "/api/v1/entries"

_log = logging.getLogger(__name__)


def _example_submission(settings: Settings) -> dict[str, Any] | None:
    """A fresh demo entry signed by a new key and attested by the log's simulated platform (dev mode only)."""
    if settings.tdx_mode != "simulated" or not (settings.platform_dir / "platform.json").exists():
        return None
    # Only a simulated log loads the simulator.
    from atlas_log.testing.demo import demo_submission
    from atlas_log.testing.simulate import SimulatedPlatform

    try:
        platform = SimulatedPlatform.load(settings.platform_dir)
    except (OSError, ValueError) as exc:  # the document is still served, without the example
        _log.warning("no example submission in the OpenAPI document: %s", exc)
        return None
    example: dict[str, Any] = demo_submission(Ed25519PrivateKey.generate(), 0, platform)
    return example


def openapi_document(app: FastAPI, settings: Settings) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``app``."""
    doc = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
    components: dict[str, Any] = doc.setdefault("components", {}).setdefault("schemas", {})
    components.update(submission_definitions(COMPONENTS))
    components["Submission"] = submission_schema(COMPONENTS)
    components["Problem"] = Problem.model_json_schema(ref_template=COMPONENTS + "{model}")
    # Invalid requests are 400 problems (errors.install_handlers), never the framework's 422 validation error.
    for item in doc.get("paths", {}).values():
        for operation in item.values():
            answer = operation.get("responses", {}).get("422", {})
            if "HTTPValidationError" in str(answer.get("content", "")):
                del operation["responses"]["422"]
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    example = _example_submission(settings)
    if example is not None:
        body = doc["paths"][SUBMIT_PATH]["post"]["requestBody"]["content"]["application/json"]
        body["examples"] = {
            "simulated-tdx": {
                "summary": "A demo entry attested by this log's simulated TDX platform (dev mode): submit it as is",
                "value": example,
            }
        }
    return doc


def install_document(app: FastAPI, settings: Settings) -> None:
    """Serve the document (built once, at its first request) and the offline ``/docs`` page."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = openapi_document(app, settings)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.mount(DOCS_ASSETS, StaticFiles(directory=swagger_ui_path), name="docs-assets")

    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
        )

    app.add_api_route("/docs", docs, methods=["GET"], include_in_schema=False)
