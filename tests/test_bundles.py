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


def test_cli_submit_bundle_and_statement(
    bundle_server: ServerProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from atlas_log import cli
    from atlas_log.submission import intoto_statement

    base = ["--server", bundle_server.url, "--vkey", bundle_server.vkey]
    platform = ["--simulated-platform", str(bundle_server.data_dir / "simulated-tdx")]
    keys = vectors_dir("model-signing", "keys")
    bundle = vectors_dir("model-signing", "v1.1.0-elliptic-key") / "model.sig"
    assert (
        cli.main(
            [
                *base,
                "submit",
                "--bundle",
                str(bundle),
                "--public-key",
                str(keys / "signing-key-pub.pem"),
                *platform,
                "--receipt",
                str(tmp_path / "r1.json"),
            ]
        )
        == 0
    )
    assert "logged at index 0" in capsys.readouterr().out
    cert_bundle = vectors_dir("model-signing", "v1.1.0-certificate") / "model.sig"
    assert cli.main([*base, "submit", "--bundle", str(cert_bundle), *platform]) == 0
    key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "k.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    (tmp_path / "s.json").write_bytes(intoto_statement([("x", "ab" * 32)], "https://example.com/p", {}))
    assert (
        cli.main(
            [*base, "submit", "--statement", str(tmp_path / "s.json"), "--key", str(tmp_path / "k.pem"), *platform]
        )
        == 0
    )
    assert "logged at index 2" in capsys.readouterr().out


def test_plain_dsse_with_an_x509_chain(bundle_server: ServerProcess) -> None:
    sub, _, _ = _submission(bundle_server, "v1.1.0-certificate", with_key=False)
    bundle = sub.pop("sigstoreBundle")
    sub["dsseEnvelope"] = bundle["dsseEnvelope"]
    sub["verificationMaterial"] = {
        "x509CertificateChain": [
            c["rawBytes"] for c in bundle["verificationMaterial"]["x509CertificateChain"]["certificates"]
        ]
    }
    r = httpx.post(bundle_server.url + "/api/v1/entries", json=sub, timeout=30)
    assert r.status_code == 201, r.text
    leaf = json.loads(base64.b64decode(r.json()["leaf"]))
    assert leaf["body"]["signatures"][0]["verifier"]["certificate"]["subject"] == "intermediate-ca"
