"""Real OpenSSF model-signing bundles (Sigstore bundle v0.3) admitted and indexed over HTTP."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from atlas_log.bundle import chain_digest, parse_bundle, signing_certificate
from atlas_log.checkpoint import Checkpoint, sign_checkpoint
from atlas_log.dsse import PublicKey, SpkiDer, parse_envelope, sign_envelope
from atlas_log.entry import LINKED_ROLES, build_body, encode_body, encode_leaf, index_summary
from atlas_log.errors import SignatureError, VerificationError
from atlas_log.evidence import verify_evidence
from atlas_log.intoto import extract
from atlas_log.merkle import RootHash, leaf_hash
from atlas_log.note import Signer
from atlas_log.receipt import split_submission
from atlas_log.reverify import Trust, check_entry
from atlas_log.submission import INTOTO_PAYLOAD_TYPE, intoto_statement, tdx_tee
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
    # What the leaf commits to of a bundle: its envelope, and its chain (chainSha256) or the key as DER SPKI.
    committed, rest = split_submission(base64.b64decode(r.json()["leaf"]), sub)
    envelope = parse_envelope(sub["sigstoreBundle"]["dsseEnvelope"]).to_json()  # in normal form (no empty keyid)
    assert committed["dsseEnvelope"] == envelope and "quote" in committed["tee"]
    assert "dsseEnvelope" not in rest["sigstoreBundle"] and "mediaType" in rest["sigstoreBundle"]
    if with_key:
        spki = PublicKey.from_pem(sub["verificationMaterial"]["publicKeys"][0]["pem"]).spki
        assert committed["verificationMaterial"] == {"publicKeys": [{"spki": base64.b64encode(spki).decode()}]}
        assert rest["verificationMaterial"] == sub["verificationMaterial"]  # the PEM text, as served
    else:
        chain = sub["sigstoreBundle"]["verificationMaterial"]["x509CertificateChain"]["certificates"]
        assert committed["verificationMaterial"] == {"x509CertificateChain": [c["rawBytes"] for c in chain]}
        assert "x509CertificateChain" not in rest["sigstoreBundle"]["verificationMaterial"]


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
    said = capsys.readouterr().out
    assert "logged at index 0" in said and "already" not in said
    # The same bundle again: the log answers with the entry it holds, and the tool says nothing new was logged.
    again = [*base, "submit", "--bundle", str(bundle), "--public-key", str(keys / "signing-key-pub.pem"), *platform]
    assert cli.main(again) == 0
    assert "already logged (the same submission) at index 0" in capsys.readouterr().out
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


# --- X.509 path validation: a leaf certificate (cA=FALSE) must not act as an issuer -------------------------

_NOW = datetime.now(UTC).replace(microsecond=0)


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[str, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool,
    eku: x509.ObjectIdentifier | None = ExtendedKeyUsageOID.CODE_SIGNING,
    path_length: int | None = None,
    cert_sign: bool | None = None,
) -> x509.Certificate:
    """A certificate shaped like a real PKI's: CAs carry keyCertSign, leaves digitalSignature, an email SAN
    and (by default) the code-signing EKU Fulcio issues."""
    issuer_name, issuer_key = issuer if issuer is not None else (subject, key)
    b = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_NOW - timedelta(days=30))
        .not_valid_after(_NOW + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
        .add_extension(
            x509.KeyUsage(
                not ca or cert_sign is False,
                False,
                False,
                False,
                False,
                ca and cert_sign is not False,
                ca,
                False,
                False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
    )
    if not ca:
        b = b.add_extension(x509.SubjectAlternativeName([x509.RFC822Name(f"{subject}@example.com")]), critical=False)
        if eku is not None:
            b = b.add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def _pki() -> tuple[x509.Certificate, list[x509.Certificate], ec.EllipticCurvePrivateKey, ec.EllipticCurvePrivateKey]:
    """root → intermediate → leaf (cA=FALSE) → "forged" (signed by the leaf's key).

    Returns the root, the attack chain [forged, leaf, intermediate], the forged certificate's key and the
    honest leaf's key."""
    keys = [ec.generate_private_key(ec.SECP256R1()) for _ in range(4)]
    root = _cert("root", keys[0], None, ca=True)
    inter = _cert("inter", keys[1], ("root", keys[0]), ca=True)
    leaf = _cert("leaf", keys[2], ("inter", keys[1]), ca=False)
    forged = _cert("forged", keys[3], ("leaf", keys[2]), ca=False)
    return root, [forged, leaf, inter], keys[3], keys[2]


def _der(certs: list[x509.Certificate]) -> list[bytes]:
    return [c.public_bytes(serialization.Encoding.DER) for c in certs]


def test_path_validation_refuses_a_leaf_acting_as_a_ca() -> None:
    root, chain, _, _ = _pki()
    now = int(_NOW.timestamp())
    # The honest chain verifies...
    assert signing_certificate(_der(chain[1:]), [root], now).certificate["subject"] == "leaf"  # type: ignore[index]
    # ...but the certificate its leaf (cA=FALSE, no keyCertSign) "issued" names nobody the roots vouch for.
    with pytest.raises(SignatureError, match="does not verify"):
        signing_certificate(_der(chain), [root], now)


@pytest.mark.parametrize("defect", ["path-length", "issuer-without-keyCertSign"])
def test_path_validation_enforces_what_issuers_may_issue(defect: str) -> None:
    keys = [ec.generate_private_key(ec.SECP256R1()) for _ in range(4)]
    root = _cert("root", keys[0], None, ca=True)
    if defect == "path-length":  # an intermediate allowed no CA below it has one
        inter = _cert("inter", keys[1], ("root", keys[0]), ca=True, path_length=0)
        inter2 = _cert("inter2", keys[2], ("inter", keys[1]), ca=True)
        chain = [_cert("leaf", keys[3], ("inter2", keys[2]), ca=False), inter2, inter]
    else:  # a CA whose key may not sign certificates
        inter = _cert("inter", keys[1], ("root", keys[0]), ca=True, cert_sign=False)
        chain = [_cert("leaf", keys[3], ("inter", keys[1]), ca=False), inter]
    with pytest.raises(SignatureError, match="does not verify"):
        signing_certificate(_der(chain), [root], int(_NOW.timestamp()))


def test_path_validation_checks_the_extended_key_usage() -> None:
    keys = [ec.generate_private_key(ec.SECP256R1()) for _ in range(3)]
    root = _cert("root", keys[0], None, ca=True)
    inter = _cert("inter", keys[1], ("root", keys[0]), ca=True)
    server_auth = _cert("tls", keys[2], ("inter", keys[1]), ca=False, eku=ExtendedKeyUsageOID.SERVER_AUTH)
    now = int(_NOW.timestamp())
    with pytest.raises(SignatureError, match=r"1\.3\.6\.1\.5\.5\.7\.3\.3"):
        signing_certificate(_der([server_auth, inter]), [root], now)
    # A log configured for another usage accepts it.
    key = signing_certificate(
        _der([server_auth, inter]), [root], now, eku=ExtendedKeyUsageOID.SERVER_AUTH.dotted_string
    )
    assert key.certificate is not None and key.certificate["subject"] == "tls"
    # Validity is checked at the time given.
    with pytest.raises(SignatureError):
        signing_certificate(_der([server_auth, inter]), [root], now + 90 * 86_400, eku="1.3.6.1.5.5.7.3.1")


def _forged_submission(chain: list[x509.Certificate], key: ec.EllipticCurvePrivateKey) -> dict[str, Any]:
    payload = intoto_statement([("model.pt", "ab" * 32)], "https://atlas-log.dev/test/v1", {})
    env = sign_envelope(INTOTO_PAYLOAD_TYPE, payload, key)
    return {
        "dsseEnvelope": env.to_json(),
        "verificationMaterial": {"x509CertificateChain": [base64.b64encode(d).decode() for d in _der(chain)]},
    }


def test_admission_refuses_a_certificate_issued_by_a_leaf(db_url: str, tmp_path: Path) -> None:
    root, chain, forged_key, leaf_key = _pki()
    (tmp_path / "roots.pem").write_bytes(root.public_bytes(serialization.Encoding.PEM))
    env = {"ATLAS_X509_ROOTS_FILE": str(tmp_path / "roots.pem"), "ATLAS_ALLOW_UNATTESTED": "true"}
    s = ServerProcess(db_url, tmp_path / "data", env=env)
    try:
        with httpx.Client(base_url=s.url, timeout=30) as http:
            r = http.post("/api/v1/entries", json=_forged_submission(chain, forged_key))
            assert r.status_code == 422, r.text
            assert r.json()["type"].endswith("/certificate-untrusted") and "cA" in r.json()["detail"]
            # The leaf itself still signs entries.
            assert http.post("/api/v1/entries", json=_forged_submission(chain[1:], leaf_key)).status_code == 201
    finally:
        s.stop()


def _hostile_log_entry(chain: list[x509.Certificate], key: ec.EllipticCurvePrivateKey) -> tuple[bytes, bytes]:
    """What a log that skipped path validation commits to for the forged chain: (leaf, submission)."""
    sub = _forged_submission(chain, key)
    envelope = parse_envelope(sub["dsseEnvelope"])
    signer = PublicKey(
        SpkiDer(
            chain[0]
            .public_key()
            .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        )
    )
    signer.certificate = {
        "certSha256": hashlib.sha256(_der(chain)[0]).hexdigest(),
        "chainSha256": chain_digest(_der(chain)),  # the leaf commits to the chain it admitted
        "subject": "forged",
        "issuer": "CN=leaf",
        "san": ["forged@example.com"],
    }
    body, _ = encode_body(
        build_body(envelope, [signer], None, index_summary(extract(INTOTO_PAYLOAD_TYPE, envelope.payload)))
    )
    leaf = encode_leaf(body, int(_NOW.timestamp()), {"sha256:" + "ab" * 32: None})
    return leaf, json.dumps(sub).encode()


def test_replay_and_evidence_refuse_a_certificate_issued_by_a_leaf(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, chain, forged_key, _ = _pki()
    leaf, submission = _hostile_log_entry(chain, forged_key)
    trust = Trust(x509_roots=(root.public_bytes(serialization.Encoding.DER),))
    problem = check_entry(0, leaf, submission, lambda d: None, trust).problem
    assert problem is not None and "cA" in problem, problem
    # The monitor's evidence: the hostile log signed a one-leaf tree holding that entry.
    log = Signer.generate("hostile.example/log")
    note = sign_checkpoint(Checkpoint(log.name, 1, RootHash(leaf_hash(leaf))), log)
    evidence = {
        "type": "atlas-log/evidence/v1",
        "kind": "bad-entry",
        "log": log.verifier.vkey,
        "reason": problem,
        "checkpoints": [note.decode()],
        "entry": {
            "logIndex": 0,
            "leaf": base64.b64encode(leaf).decode(),
            "inclusionProof": [],
            "submission": base64.b64encode(submission).decode(),
            "collateral": None,
        },
    }
    assert "does not verify" in verify_evidence(evidence, log.verifier, trust=trust)
    # A chain the leaf does not commit to proves nothing: whoever wrote the evidence may have broken it.
    swapped = json.loads(submission)
    swapped["verificationMaterial"]["x509CertificateChain"] = [
        base64.b64encode(d).decode() for d in _der([chain[0], chain[0]])
    ]
    swapped_b64 = base64.b64encode(json.dumps(swapped).encode()).decode()
    other = {**evidence, "entry": {**evidence["entry"], "submission": swapped_b64}}
    with pytest.raises(VerificationError, match="does not commit to this chain"):
        verify_evidence(other, log.verifier, trust=trust)
    # The same check from the command line, with the roots the monitor trusts.
    from atlas_log import cli

    (tmp_path / "roots.pem").write_bytes(root.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "evidence.json").write_text(json.dumps(evidence))
    args = [
        *("--vkey", log.verifier.vkey, "verify-evidence", str(tmp_path / "evidence.json")),
        *("--x509-roots", str(tmp_path / "roots.pem")),
    ]
    assert cli.main(args) == 0
    assert "does not verify" in capsys.readouterr().out
    assert cli.main([*args, "--x509-eku", "1.3.6.1.5.5.7.3.3"]) == 0


def test_replay_rederives_the_chain_digest_and_accepts_entries_logged_before_it() -> None:
    """An entry records the digest of the chain it was admitted with (so evidence of a bad chain can be tied to
    the leaf); entries logged before that record only the signing certificate, and still replay."""
    bundle = json.loads((vectors_dir("model-signing", "v1.1.0-certificate") / "model.sig").read_text())
    ca = x509.load_pem_x509_certificate((vectors_dir("model-signing", "keys") / "ca-cert.pem").read_bytes())
    trust = Trust(x509_roots=(ca.public_bytes(serialization.Encoding.DER),))
    parsed = parse_bundle(bundle)
    t = int(x509.load_der_x509_certificate(parsed.chain[0]).not_valid_before_utc.timestamp()) + 86_400
    envelope = parse_envelope(bundle["dsseEnvelope"])
    extraction = extract(envelope.payload_type, envelope.payload)

    def leaf(certificate: dict[str, Any]) -> bytes:
        key = signing_certificate(parsed.chain, [ca], t)
        key.certificate = certificate
        body, _ = encode_body(build_body(envelope, [key], None, index_summary(extraction)))
        return encode_leaf(body, t, {d: None for d in extraction.digests(*LINKED_ROLES)})

    recorded = signing_certificate(parsed.chain, [ca], t).certificate
    assert recorded is not None and recorded["chainSha256"] == chain_digest(parsed.chain)
    legacy = {k: v for k, v in recorded.items() if k != "chainSha256"}
    submission = {"sigstoreBundle": bundle}
    assert check_entry(0, leaf(recorded), submission, lambda d: None, trust).problem is None
    assert check_entry(0, leaf(legacy), submission, lambda d: None, trust).problem is None
    wrong = {**recorded, "chainSha256": "00" * 32}
    assert check_entry(0, leaf(wrong), submission, lambda d: None, trust).problem is not None
