"""The submission schema and the parser agree.

Both directions: every submission the library and the tests build validates against the schema; every body
the schema accepts gets past every structural check of the parser (``parse_submission`` and ``parse_tee``),
so what is left to reject it is what no schema can state: a key, a signature, a certificate chain, the
statement. And at the boundaries (one member too many, one signature too many, a base64 spelling that is not
canonical) schema and parser both refuse.
"""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import jsonschema
import pytest
import schemathesis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings

from atlas_log.dsse import Envelope, EnvelopeSignature, sign_envelope
from atlas_log.errors import SubmissionError
from atlas_log.schema import DEFS, SUBMISSION_SCHEMA, submission_definitions, submission_schema
from atlas_log.submission import (
    INTOTO_PAYLOAD_TYPE,
    TEE_MEMBERS,
    TOP_LEVEL_MEMBERS,
    build_submission,
    intoto_statement,
    parse_submission,
    parse_tee,
    signed_submission,
    spki_der,
    tdx_tee,
)
from atlas_log.tdx.binding import KEY_TAG, key_report_data
from atlas_log.testing.demo import demo_submission
from atlas_log.testing.simulate import SimulatedPlatform
from tests.vectors import vectors_dir

NOW = 1_900_000_000
VALIDATOR = jsonschema.Draft202012Validator(SUBMISSION_SCHEMA, format_checker=jsonschema.FormatChecker())

# What a well-formed submission can still be refused for: its keys, signatures, certificates or statement.
SEMANTIC = {"invalid-public-key", "certificate-untrusted", "signature-invalid", "invalid-statement"}


@pytest.fixture(scope="module")
def platform() -> SimulatedPlatform:
    return SimulatedPlatform.create()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _real_submissions(platform: SimulatedPlatform) -> dict[str, dict[str, Any]]:
    ed = Ed25519PrivateKey.generate()
    p256, p384 = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP384R1())
    payload = intoto_statement([("model.bin", "ab" * 32)], "https://atlas-log.dev/demo/v1", {"n": 1})
    two = sign_envelope(INTOTO_PAYLOAD_TYPE, payload, p256)
    other = sign_envelope(INTOTO_PAYLOAD_TYPE, payload, p384).signatures[0]
    multi = Envelope(two.payload_type, two.payload, (two.signatures[0], EnvelopeSignature(other.sig, "second")))
    pem = p384.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    multi_sub = build_submission(multi, [])
    multi_sub["verificationMaterial"]["publicKeys"] = [
        {"spki": _b64(spki_der(p256))},
        {"pem": pem.decode(), "keyid": "second"},
    ]
    multi_sub["tee"] = {**tdx_tee(platform.quote(bytes(64))), "signatureIndex": 1}
    key_mode = signed_submission(ed, payload)
    key_mode["tee"] = tdx_tee(platform.quote(key_report_data(spki_der(ed), bytes(32))), binding=KEY_TAG)
    later = signed_submission(ed, payload)
    later["tee"] = {"type": "intel-tdx", "binding": KEY_TAG, "keyAttestationEntry": 7}
    fresh = demo_submission(ed, 2, platform, nonce=bytes(range(32)))
    annotated = {**demo_submission(ed, 3), "apiVersion": "atlas-log/v1", "annotations": {"run": "nightly"}}
    return {
        "demo, attested": demo_submission(ed, 0, platform),
        "demo, unattested": demo_submission(ed, 1),
        "fresh nonce": fresh,
        "ECDSA P-256": signed_submission(p256, payload, platform),
        "two signers, PEM and keyid": multi_sub,
        "key binding": key_mode,
        "key attestation entry": later,
        "annotations": annotated,
    }


def _bundle_submissions() -> dict[str, dict[str, Any]]:
    pem = (vectors_dir("model-signing", "keys") / "signing-key-pub.pem").read_text()
    subs = {}
    for case in ("v1.1.0-elliptic-key", "v1.1.0-certificate"):
        bundle = json.loads((vectors_dir("model-signing", case) / "model.sig").read_text())
        sub: dict[str, Any] = {"sigstoreBundle": bundle, "tee": tdx_tee(bytes(100))}
        if "publicKey" in bundle["verificationMaterial"]:
            sub["verificationMaterial"] = {"publicKeys": [{"pem": pem}]}
        subs[f"bundle {case}"] = sub
    chain = json.loads((vectors_dir("model-signing", "v1.1.0-certificate") / "model.sig").read_text())
    certs = chain["verificationMaterial"]["x509CertificateChain"]["certificates"]
    subs["DSSE with an X.509 chain"] = {
        "dsseEnvelope": chain["dsseEnvelope"],
        "verificationMaterial": {"x509CertificateChain": [c["rawBytes"] for c in certs]},
    }
    return subs


def test_the_schema_is_a_valid_json_schema_naming_the_parsers_members() -> None:
    jsonschema.Draft202012Validator.check_schema(SUBMISSION_SCHEMA)
    variants = SUBMISSION_SCHEMA["oneOf"]
    assert set().union(*(v["properties"] for v in variants)) == TOP_LEVEL_MEMBERS
    tees = SUBMISSION_SCHEMA["$defs"]["Tee"]["oneOf"]
    assert set().union(*(t["properties"] for t in tees)) == TEE_MEMBERS
    # The split form (for an OpenAPI document's components) is the same schema.
    prefix = "#/components/schemas/"
    split = json.dumps({**submission_schema(prefix), "$defs": submission_definitions(prefix)})
    whole = {k: v for k, v in SUBMISSION_SCHEMA.items() if k != "$schema"}
    assert json.loads(split.replace(prefix, DEFS)) == whole


def test_every_real_submission_validates(platform: SimulatedPlatform) -> None:
    subs = _real_submissions(platform)
    for name, sub in subs.items():
        errors = [e.message for e in VALIDATOR.iter_errors(sub)]
        assert not errors, f"{name}: {errors[:3]}"
        parse_submission(json.dumps(sub).encode(), NOW)  # and the parser admits its shape and signatures
        if "tee" in sub:
            parse_tee(sub["tee"], len(sub["dsseEnvelope"]["signatures"]))


def test_every_real_bundle_and_chain_validates() -> None:
    for name, sub in _bundle_submissions().items():
        errors = [e.message for e in VALIDATOR.iter_errors(sub)]
        assert not errors, f"{name}: {errors[:3]}"


def _structure(sub: dict[str, Any]) -> str | None:
    """The parser's verdict on the structure: None if nothing structural is wrong, else the error."""
    try:
        parse_submission(json.dumps(sub).encode(), NOW)
    except SubmissionError as exc:
        if exc.code not in SEMANTIC:
            return f"{exc.code}: {exc.message}"
    if "tee" in sub:
        envelope = sub["dsseEnvelope"] if "dsseEnvelope" in sub else sub["sigstoreBundle"]["dsseEnvelope"]
        try:
            parse_tee(sub["tee"], len(envelope["signatures"]))
        except SubmissionError as exc:
            return f"{exc.code}: {exc.message}"
    return None


def _openapi(schema: dict[str, Any]) -> schemathesis.schemas.BaseSchema:
    prefix = "#/components/schemas/"
    components = {**submission_definitions(prefix), "Submission": submission_schema(prefix)}
    body = {"required": True, "content": {"application/json": {"schema": {"$ref": prefix + "Submission"}}}}
    post = {"requestBody": body, "responses": {"200": {"description": "logged"}}}
    doc = {
        "openapi": "3.1.0",
        "info": {"title": "submissions", "version": "1"},
        "paths": {"/entries": {"post": post}},
        "components": {"schemas": components},
    }
    return schemathesis.openapi.from_dict(doc)


_SCHEMA_BODIES = next(iter(_openapi(SUBMISSION_SCHEMA).get_all_operations())).ok().as_strategy()
_REAL_KEY = Ed25519PrivateKey.generate()
_REAL_SPKI = _b64(spki_der(_REAL_KEY))
_REAL_PEM = (
    _REAL_KEY.public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode()
)


def _with_real_keys(sub: dict[str, Any]) -> dict[str, Any]:
    """The same body with every supplied key replaced by a real one (keeping its keyid), so the parser's
    checks after a key decodes (its keyid) are reached too."""
    sub = copy.deepcopy(sub)
    for key in sub.get("verificationMaterial", {}).get("publicKeys", []):
        if "spki" in key:
            key["spki"] = _REAL_SPKI
        else:
            key["pem"] = _REAL_PEM
    return sub


def _integers_as_integers(value: Any) -> Any:
    """``value`` with each integral number spelled as an integer. JSON Schema's ``integer`` is a value, so
    ``1.0`` is one; the parser reads how a number is written and takes an index only written ``1``. That is
    the one rule the schema cannot state (its descriptions say it); it is pinned by the test below."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _integers_as_integers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integers_as_integers(v) for v in value]
    return value


def test_an_index_written_with_a_fraction_is_refused() -> None:
    for member in ("signatureIndex", "keyAttestationEntry"):
        tee = {"type": "intel-tdx", "binding": KEY_TAG, "keyAttestationEntry": 0, member: 0.0}
        with pytest.raises(SubmissionError, match=member):
            parse_tee(tee, 1)


@given(case=_SCHEMA_BODIES)
@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_a_body_the_schema_accepts_passes_every_structural_check(case: schemathesis.Case) -> None:
    sub = _integers_as_integers(case.body)
    assert VALIDATOR.is_valid(sub)
    assert _structure(sub) is None, json.dumps(sub)[:600]
    if "verificationMaterial" in sub and "publicKeys" in sub["verificationMaterial"]:
        real = _with_real_keys(sub)
        assert VALIDATOR.is_valid(real)
        try:
            parse_submission(json.dumps(real).encode(), NOW)
        except SubmissionError as exc:  # now only the signatures (or the statement) can be wrong
            assert exc.code in {"signature-invalid", "invalid-statement", "certificate-untrusted"}, exc.message


def _mutations(good: dict[str, Any]) -> dict[str, dict[str, Any]]:
    def changed(path: str, value: Any) -> dict[str, Any]:
        sub = copy.deepcopy(good)
        *parents, last = path.split(".")
        node = sub
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node[p]
        if value is _DELETE:
            del node[last]
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
        return sub

    sig = good["dsseEnvelope"]["signatures"][0]
    return {
        "unknown member": changed("extra", 1),
        "apiVersion": changed("apiVersion", "atlas-log/v2"),
        "no envelope": changed("dsseEnvelope", _DELETE),
        "bundle and envelope": changed("sigstoreBundle", {}),
        "empty payloadType": changed("dsseEnvelope.payloadType", ""),
        "non-canonical base64": changed("dsseEnvelope.payload", "AB=="),
        "unpadded base64": changed("dsseEnvelope.payload", "AA"),
        "no signatures": changed("dsseEnvelope.signatures", []),
        "five signatures": changed("dsseEnvelope.signatures", [sig] * 5),
        "empty sig": changed("dsseEnvelope.signatures.0.sig", ""),
        "long keyid": changed("dsseEnvelope.signatures.0.keyid", "k" * 257),
        "no keys": changed("verificationMaterial.publicKeys", []),
        "key with spki and pem": changed("verificationMaterial.publicKeys.0.pem", "x"),
        "unknown tee member": changed("tee.extra", 1),
        "tee type": changed("tee.type", "amd-sev"),
        "short nonce": changed("tee.nonce", "00" * 31),
        "upper-case nonce": changed("tee.nonce", "AA" * 32),
        "binding": changed("tee.binding", "other"),
        "signatureIndex beyond the signatures": changed("tee.signatureIndex", 1),
        "signatureIndex a boolean": changed("tee.signatureIndex", True),
        "quote and keyAttestationEntry": changed("tee.keyAttestationEntry", 1),
        "no quote": changed("tee.quote", _DELETE),
    }


_DELETE = object()


def test_schema_and_parser_refuse_the_same_structural_mistakes(platform: SimulatedPlatform) -> None:
    good = demo_submission(Ed25519PrivateKey.generate(), 0, platform)
    assert VALIDATOR.is_valid(good) and _structure(good) is None
    for name, sub in _mutations(good).items():
        assert not VALIDATOR.is_valid(sub), f"the schema accepts: {name}"
        assert _structure(sub) is not None, f"the parser accepts: {name}"
