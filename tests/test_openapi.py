"""The served OpenAPI document describes the real API: real submissions and real answers of a real server
(simulated-TDX dev mode) validate against it, and its /docs page loads nothing from another origin."""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from atlas_log.testing.demo import demo_submission
from tests.conftest import ServerProcess


class Document:
    """The served document, and a check of one answer against what it says of (method, route, status)."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.checked: set[tuple[str, str, int]] = set()

    def _validate(self, schema: dict[str, Any], instance: Any) -> None:
        root = {**schema, "components": self.doc["components"]}
        errors = [e.message for e in jsonschema.Draft202012Validator(root).iter_errors(instance)]
        assert not errors, errors[:3]

    def request(self, route: str, body: Any) -> None:
        content = self.doc["paths"][route]["post"]["requestBody"]["content"]["application/json"]
        self._validate(content["schema"], body)

    def answer(self, method: str, route: str, response: httpx.Response) -> None:
        where = f"{method} {route} {response.status_code}"
        declared = self.doc["paths"][route][method.lower()]["responses"]
        assert str(response.status_code) in declared, f"{where}: undocumented status ({response.text[:200]})"
        content = declared[str(response.status_code)].get("content", {})
        media = response.headers.get("content-type", "")
        if not content:
            assert not response.content, where
            return
        assert media in content or media.split(";")[0] in content, f"{where}: {media} not in {list(content)}"
        schema = content.get(media) or content[media.split(";")[0]]
        if media.startswith(("application/json", "application/problem+json")):
            self._validate(schema["schema"], response.json())
        self.checked.add((method, route, response.status_code))


@pytest.fixture
def mapped_server(db_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    """A server whose verifiable map commits quickly, so answers carry completeness proofs."""
    s = ServerProcess(db_url, tmp_path / "data", env={"ATLAS_MAP_INTERVAL_S": "0.2"})
    yield s
    s.stop()


def test_real_submissions_and_answers_match_the_served_document(mapped_server: ServerProcess) -> None:
    server = mapped_server
    http = httpx.Client(base_url=server.url, timeout=30)
    doc = Document(http.get("/openapi.json").json())
    key = Ed25519PrivateKey.generate()
    subs = [demo_submission(key, n, server.platform) for n in range(2)]
    subs.append(demo_submission(key, 2, server.platform, gpus=server.gpu))  # composite: a quote and a GPU
    example = doc.doc["paths"]["/api/v1/entries"]["post"]["requestBody"]["content"]["application/json"]
    subs.append(example["examples"]["simulated-tdx"]["value"])
    for sub in subs:
        doc.request("/api/v1/entries", sub)

    def call(method: str, route: str, url: str | None = None, **kw: Any) -> httpx.Response:
        response = http.request(method, url or route, **kw)
        doc.answer(method, route, response)
        return response

    admitted = []
    for sub in subs:
        posted = call("POST", "/api/v1/entries", json=sub)
        assert posted.status_code == 201
        admitted.append(posted.json())
    assert call("POST", "/api/v1/entries", json=subs[0]).status_code == 200
    receipt = http.post("/api/v1/entries", json=subs[0]).json()
    leaf = json.loads(base64.b64decode(receipt["leaf"]))
    subject = leaf["body"]["index"]["subjects"][0]
    collateral = leaf["body"]["tee"]["collateral"]["set"]
    composite = json.loads(base64.b64decode(admitted[2]["leaf"]))["body"]["tee"]
    rim = composite["gpus"][0]["rims"][0]["sha256"]
    ocsp = composite["gpus"][0]["revocation"][0]["sha256"]
    deadline = time.monotonic() + 30  # the map commits what was admitted
    while "completeness" not in http.get(f"/api/v1/artifacts/{subject}/history").json():
        assert time.monotonic() < deadline, "the map never committed"
        time.sleep(0.1)
    answers = {
        "/api/v1/entries/{index}": ["/api/v1/entries/0", "/api/v1/entries/99", "/api/v1/entries/-1"],
        "/api/v1/entries": [f"/api/v1/entries?leafHash={receipt['leafHash']}", "/api/v1/entries?leafHash=x"],
        "/api/v1/entries/{index}/evidence": [
            "/api/v1/entries/0/evidence",
            "/api/v1/entries/2/evidence",
            "/api/v1/entries/9/evidence",
        ],
        "/api/v1/rims/{digest}": [f"/api/v1/rims/{rim}", "/api/v1/rims/00", "/api/v1/rims/" + "0" * 64],
        "/api/v1/ocsp/{digest}": [f"/api/v1/ocsp/{ocsp}", "/api/v1/ocsp/00", "/api/v1/ocsp/" + "0" * 64],
        "/api/v1/collateral/{digest}": [f"/api/v1/collateral/{collateral}", "/api/v1/collateral/00"],
        "/api/v1/submissions": ["/api/v1/submissions?start=0&count=2", "/api/v1/submissions?start=5&count=1"],
        "/api/v1/proofs/inclusion": ["/api/v1/proofs/inclusion?index=0&treeSize=3", "/api/v1/proofs/inclusion"],
        "/api/v1/proofs/consistency": [
            "/api/v1/proofs/consistency?from=1&to=3",
            "/api/v1/proofs/consistency?from=3&to=1",
        ],
        "/api/v1/log": ["/api/v1/log"],
        "/healthz": ["/healthz"],
        "/readyz": ["/readyz"],
        "/checkpoint": ["/checkpoint"],
        "/tile/{path}": ["/tile/0/000.p/3", "/tile/entries/000.p/3", "/tile/0/000", "/tile/x"],
        "/api/v1/artifacts/{artifact}/history": [f"/api/v1/artifacts/{subject}/history", "/api/v1/artifacts/x/history"],
        "/api/v1/artifacts/{artifact}/lineage": [
            f"/api/v1/artifacts/{subject}/lineage?direction=down",
            f"/api/v1/artifacts/{subject}/lineage?complete=true",
        ],
        "/api/v1/search": ["/api/v1/search?name=demo-artifact-0", "/api/v1/search"],
        "/api/v1/map": ["/api/v1/map"],
        "/api/v1/artifacts/{artifact}/pack": [f"/api/v1/artifacts/{subject}/pack", "/api/v1/artifacts/x/pack"],
        "/metrics": ["/metrics"],
        "/admin/v1/tenants": ["/admin/v1/tenants"],
        "/api/v1/entries/{index}/disclosures": ["/api/v1/entries/0/disclosures"],
        "/api/v1/disclosure-reads": ["/api/v1/disclosure-reads"],
        "/api/v1/blinding-key": ["/api/v1/blinding-key"],
    }
    for route, urls in answers.items():
        for url in urls:
            call("GET", route, url)
    # With the development log's admin token: a tenant's token asking for another tenant's key is refused.
    admin = {"Authorization": "Bearer " + (server.data_dir / "admin.token").read_text().strip()}
    assert call("GET", "/admin/v1/tenants", headers=admin).status_code == 200
    assert http.put("/admin/v1/tenants/a", json={"ratePerSecond": 10, "burst": 10}, headers=admin).status_code == 200
    token = http.post("/admin/v1/tenants/a/tokens", json={}, headers=admin).json()["token"]
    tenant = {"Authorization": f"Bearer {token}"}
    assert call("GET", "/api/v1/blinding-key", "/api/v1/blinding-key?tenant=b", headers=tenant).status_code == 403
    bad = {**subs[0], "tee": {"type": "intel-tdx"}}
    for body in (b"{", json.dumps({"dsseEnvelope": {}}).encode(), json.dumps(bad).encode()):
        assert call("POST", "/api/v1/entries", content=body).status_code == 400
    erase = call("DELETE", "/api/v1/entries/{index}/disclosures", "/api/v1/entries/0/disclosures", json={"reason": "x"})
    assert erase.status_code == 401
    unattested = demo_submission(key, 7)
    assert call("POST", "/api/v1/entries", json=unattested).status_code == 422
    statuses = {s for _, _, s in doc.checked}
    assert {200, 201, 400, 403, 404, 422} <= statuses, statuses
    # Every route of the document was exercised.
    routes = {(m.upper(), p) for p, item in doc.doc["paths"].items() for m in item}
    exercised = {(m, r) for m, r, _ in doc.checked}
    assert routes - exercised <= {
        ("PUT", "/admin/v1/tenants/{name}"),
        ("POST", "/admin/v1/tenants/{name}/tokens"),
        ("POST", "/admin/v1/tenants/{name}/grants"),
        ("DELETE", "/admin/v1/tokens/{token_id}"),
    }, routes - exercised


_ASSET = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url:\s*["']([^"']+)["']""")


def test_docs_are_served_offline(server: ServerProcess) -> None:
    http = httpx.Client(base_url=server.url, timeout=30)
    page = http.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    urls = [a or b for a, b in _ASSET.findall(page.text)]
    assert urls, page.text
    expected = {".js": ("text/javascript", "application/javascript"), ".css": ("text/css",), ".png": ("image/png",)}
    for url in urls:
        assert url.startswith("/") and not url.startswith("//"), f"{url} is not on this origin"
        asset = http.get(url)
        assert asset.status_code == 200, url
        if url == "/openapi.json":
            assert asset.json()["openapi"].startswith("3.1")
            continue
        suffix = url[url.rindex(".") :]
        assert asset.headers["content-type"].split(";")[0] in expected[suffix], (url, asset.headers["content-type"])
    assert {u.rsplit("/", 1)[-1] for u in urls} >= {"swagger-ui-bundle.js", "swagger-ui.css", "openapi.json"}
