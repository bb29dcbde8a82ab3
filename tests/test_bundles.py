"""Real OpenSSF model-signing bundles (Sigstore bundle v0.3) admitted and indexed over HTTP."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from atlas_log.dsse import PublicKey, parse_envelope
from atlas_log.submission import tdx_tee
from atlas_log.tdx.binding import payload_report_data
from tests.conftest import ServerProcess
from tests.vectors import vectors_dir


@pytest.fixture
def bundle_server(db_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    roots = vectors_dir("model-signing", "keys") / "ca-cert.pem"
    s = ServerProcess(db_url, tmp_path / "data", env={"ATLAS_X509_ROOTS_FILE": str(roots)})
    yield s
    s.stop()


def _submission(server: ServerProcess, case: str, with_key: bool) -> tuple[dict, str, dict]:  # type: ignore[type-arg]
    d = vectors_dir("model-signing", case)
    bundle = json.loads((d / "model.sig").read_text())
    pem = (vectors_dir("model-signing", "keys") / "signing-key-pub.pem").read_text()
    key = PublicKey.from_pem(pem)
    env = parse_envelope(bundle["dsseEnvelope"])
    quote = server.platform.quote(payload_report_data(env.payload_type, env.payload, key.spki))
    sub: dict = {"sigstoreBundle": bundle, "tee": tdx_tee(quote)}  # type: ignore[type-arg]
    if with_key:
        sub["verificationMaterial"] = {"publicKeys": [{"pem": pem}]}
    files = {n: hashlib.sha256((d / n).read_bytes()).hexdigest() for n in ("signme-1", "signme-2")}
    root = hashlib.sha256(b"".join(bytes.fromhex(files[n]) for n in sorted(files))).hexdigest()
    return sub, root, files


@pytest.mark.parametrize(("case", "with_key"), [("v1.1.0-elliptic-key", True), ("v1.1.0-certificate", False)])
def test_real_bundle_admitted_and_indexed(bundle_server: ServerProcess, case: str, with_key: bool) -> None:
    sub, root, files = _submission(bundle_server, case, with_key)
    with httpx.Client(base_url=bundle_server.url, timeout=30) as http:
        r = http.post("/api/v1/entries", json=sub)
        assert r.status_code == 201, r.text
        leaf = json.loads(base64.b64decode(r.json()["leaf"]))
        index = leaf["body"]["index"]
        assert index["predicateType"] == "https://model_signing/signature/v1.0"
        assert index["subjects"] == [f"sha256:{root}"] and leaf["links"] == {f"sha256:{root}": None}
        verifier = leaf["body"]["signatures"][0]["verifier"]
        assert ("certificate" in verifier) == (not with_key)
        for digest in files.values():
            hist = http.get(f"/api/v1/artifacts/sha256:{digest}/history").json()
            assert hist["entries"][0]["roles"] == ["component"]
        assert http.get(f"/api/v1/artifacts/sha256:{root}/history").json()["entries"][0]["roles"] == ["subject"]


def test_key_signed_bundle_needs_the_key(bundle_server: ServerProcess) -> None:
    sub, _, _ = _submission(bundle_server, "v1.1.0-elliptic-key", with_key=False)
    r = httpx.post(bundle_server.url + "/api/v1/entries", json=sub, timeout=30)
    assert r.status_code == 400 and r.json()["type"].endswith("/invalid-submission")


def test_certificate_from_an_unconfigured_root_is_refused(server: ServerProcess) -> None:
    sub, _, _ = _submission(server, "v1.1.0-certificate", with_key=False)
    r = httpx.post(server.url + "/api/v1/entries", json=sub, timeout=30)
    assert r.status_code == 422 and r.json()["type"].endswith("/certificate-untrusted")
