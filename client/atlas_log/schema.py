"""The JSON Schema (2020-12, as OpenAPI 3.1 embeds it) of the body of ``POST /api/v1/entries``.

One declarative statement of the submission's shape, built from the constants the parser enforces
(:mod:`atlas_log.submission`, :mod:`atlas_log.bundle`, :mod:`atlas_log.dsse`), so the published contract
and the parser cannot drift apart: the log serves it as its request body in the OpenAPI document, and the
tests prove that every submission the schema accepts gets past every structural check of the parser (what
is left are the checks no schema can state: keys, signatures, certificates, the quote and its binding).

Plain data only: the client needs no schema library to build it, and the log none to serve it.
"""

from __future__ import annotations

from typing import Any

from atlas_log.bundle import MAX_CERTIFICATES, MEDIA_TYPES
from atlas_log.dsse import MAX_KEYID, MAX_SIGNATURES
from atlas_log.entry import API_VERSION
from atlas_log.submission import MAX_GPUS, MAX_INDEX, MAX_KEYS
from atlas_log.tdx.binding import GPU_TAG, KEY_TAG, PAYLOAD_TAG, ZERO_NONCE

__all__ = ["BASE64_PATTERN", "DEFS", "SUBMISSION_SCHEMA", "submission_definitions", "submission_schema"]

DEFS = "#/$defs/"

BASE64_PATTERN = "^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)?$"
"""Canonical padded standard base64 (RFC 4648 §4), as :func:`atlas_log._encoding.b64decode` accepts it: the
last character before padding may only carry zero padding bits, so each byte string has one spelling."""

_NONCE_HEX = len(ZERO_NONCE) * 2


def _base64(description: str, *, non_empty: bool = False) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", "pattern": BASE64_PATTERN, "description": description}
    if non_empty:
        schema["minLength"] = 4
    return schema


def _object(properties: dict[str, Any], required: list[str], description: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": description,
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def _definitions(ref: str) -> dict[str, Any]:
    signature = _object(
        {
            "sig": _base64("the signature over PAE(payloadType, payload)", non_empty=True),
            "keyid": {"type": "string", "maxLength": MAX_KEYID, "description": "names the key that verifies it"},
        },
        ["sig"],
        "one DSSE signature",
    )
    envelope = _object(
        {
            "payloadType": {"type": "string", "minLength": 1, "examples": ["application/vnd.in-toto+json"]},
            "payload": _base64("the signed statement (an in-toto Statement v1 for provenance)"),
            "signatures": {"type": "array", "minItems": 1, "maxItems": MAX_SIGNATURES, "items": signature},
        },
        ["payloadType", "payload", "signatures"],
        "a DSSE envelope (secure-systems-lab/dsse v1.0.2)",
    )
    public_key_members = {"keyid": {"type": "string", "maxLength": MAX_KEYID}}
    public_key = {
        "description": "a signer's public key: DER SubjectPublicKeyInfo (base64) or PEM; Ed25519, ECDSA P-256/P-384 "
        "or RSA 2048..4096 (e = 65537)",
        "oneOf": [
            _object({"spki": _base64("DER SubjectPublicKeyInfo", non_empty=True), **public_key_members}, ["spki"], ""),
            _object({"pem": {"type": "string", "minLength": 1}, **public_key_members}, ["pem"], ""),
        ],
    }
    material = {
        **_object(
            {
                "publicKeys": {"type": "array", "minItems": 1, "maxItems": MAX_KEYS, "items": public_key},
                "x509CertificateChain": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": MAX_CERTIFICATES,
                    "items": _base64("a DER certificate", non_empty=True),
                    "description": "DER certificates, leaf first, leading to a root the log is configured with "
                    "(when present, the signer is the leaf's key and publicKeys is not used)",
                },
            },
            [],
            "what verifies the envelope's signatures: the signers' keys or an X.509 certificate chain",
        ),
        "minProperties": 1,
    }
    raw_certificate = _object({"rawBytes": _base64("a DER certificate", non_empty=True)}, ["rawBytes"], "")
    bundle_material = {
        "x509CertificateChain": _object(
            {"certificates": {"type": "array", "minItems": 1, "maxItems": MAX_CERTIFICATES, "items": raw_certificate}},
            ["certificates"],
            "the signing certificate and its issuers, leaf first",
        ),
        "certificate": raw_certificate,
        "publicKey": _object({"hint": {"type": "string"}}, [], "a key hint: the submission supplies the key"),
    }
    ignored = {"type": "array", "maxItems": 0, "description": "not read by the log"}

    def bundle(kind: str, description: str) -> dict[str, Any]:
        return _object(
            {
                "mediaType": {"enum": list(MEDIA_TYPES)},
                "dsseEnvelope": {"$ref": ref + "DsseEnvelope"},
                "verificationMaterial": _object(
                    {kind: bundle_material[kind], "tlogEntries": ignored},
                    [kind],
                    "",
                ),
            },
            ["mediaType", "dsseEnvelope", "verificationMaterial"],
            description,
        )

    tee_common: dict[str, Any] = {
        "type": {"const": "intel-tdx"},
        "signatureIndex": {
            "type": "integer",
            "minimum": 0,
            "maximum": MAX_SIGNATURES - 1,
            "default": 0,
            "description": "the envelope signature whose key the quote binds (must index one of its signatures); "
            "written as a JSON integer (no fraction or exponent)",
        },
        "nonce": {
            "type": "string",
            "pattern": f"^[0-9a-f]{{{_NONCE_HEX}}}$",
            "default": ZERO_NONCE.hex(),
            "description": "32 bytes, lowercase hex: zero, or the root hash of a recent checkpoint",
        },
        "eventLog": {"type": "string", "description": "not read by the log"},
    }
    quote_tee = _object(
        {
            **tee_common,
            "binding": {"enum": [PAYLOAD_TAG, KEY_TAG], "default": PAYLOAD_TAG},
            "quote": _base64("a DCAP TDX quote (v4 or v5) whose REPORTDATA is the binding", non_empty=True),
        },
        ["type", "quote"],
        "a TDX quote binding this statement (payload binding) or this signer's key (key binding)",
    )
    gpu_evidence = _object(
        {
            "arch": {"enum": ["HOPPER", "BLACKWELL"]},
            "nonce": {
                "type": "string",
                "pattern": f"^[0-9a-fA-F]{{{_NONCE_HEX}}}$",
                "description": "the SPDM request's nonce: the entry's GPU nonce (see the composite binding)",
            },
            "evidence": _base64("the GPU's SPDM GET_MEASUREMENTS request and signed response", non_empty=True),
            "certificate": _base64("the GPU's device certificate chain, PEM, leaf first", non_empty=True),
        },
        ["arch", "nonce", "evidence", "certificate"],
        "one GPU's attestation evidence, as NVIDIA's tools serialize it",
    )
    gpu_tee = _object(
        {
            **tee_common,
            "binding": {"const": GPU_TAG},
            "quote": _base64("a DCAP TDX quote whose REPORTDATA is the composite binding", non_empty=True),
            "gpus": {"type": "array", "items": gpu_evidence, "minItems": 1, "maxItems": MAX_GPUS},
        },
        ["type", "binding", "quote", "gpus"],
        "a TDX quote binding this statement and the evidence of every GPU that did the work (composite binding)",
    )
    key_tee = _object(
        {
            **tee_common,
            "binding": {"const": KEY_TAG},
            "keyAttestationEntry": {
                "type": "integer",
                "minimum": 0,
                "maximum": MAX_INDEX,
                "description": "the log index of an earlier entry whose quote attested this signer's key; written as a "
                "JSON integer (no fraction or exponent)",
            },
        },
        ["type", "binding", "keyAttestationEntry"],
        "a reference to an earlier entry that attested the signing key (key mode)",
    )
    return {
        "DsseEnvelope": envelope,
        "VerificationMaterial": material,
        "SigstoreBundleWithCertificates": {
            "oneOf": [
                bundle("x509CertificateChain", "a Sigstore bundle v0.3 signed with a certificate chain"),
                bundle("certificate", "a Sigstore bundle v0.3 signed with one certificate"),
            ]
        },
        "SigstoreBundleWithKey": bundle(
            "publicKey", "a Sigstore bundle v0.3 signed with a key the submission supplies"
        ),
        "Tee": {"oneOf": [quote_tee, gpu_tee, key_tee], "description": "the TEE evidence for the entry"},
    }


def _variant(ref: str, properties: dict[str, Any], required: list[str], title: str) -> dict[str, Any]:
    shared = {
        "apiVersion": {"const": API_VERSION, "default": API_VERSION},
        "tee": {"$ref": ref + "Tee"},
        "annotations": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "description": "free-form labels; not committed to by the entry",
        },
        "disclosures": {
            "type": "array",
            "items": {"type": "string", "pattern": "^[A-Za-z0-9_-]+$"},
            "maxItems": 1000,
            "description": "the values the signed statement hides behind salted digests (SD-JWT disclosures, "
            "base64url): kept encrypted by the log, served only to the submitting tenant and grant holders",
        },
    }
    return {"title": title, **_object({**shared, **properties}, required, "")}


def submission_schema(ref: str = DEFS) -> dict[str, Any]:
    """The schema of a submission: a DSSE envelope with its verification material, or a Sigstore bundle (its
    own certificates, or a key hint plus the key in ``verificationMaterial``), each with an optional ``tee``.

    Its named parts are under ``$defs``; with another ``ref`` (such as ``"#/components/schemas/"``) they are
    left out and referred to there instead: see :func:`submission_definitions`. The rule that crosses members
    (``tee.signatureIndex`` must index a signature of the envelope) is stated with ``if``/``then``. Limits of
    the whole document (its size, nesting depth and integer range) are the parser's, not the schema's."""
    material = {"$ref": ref + "VerificationMaterial"}
    signature_index_rules = []
    for index in range(1, MAX_SIGNATURES):
        more = {"properties": {"signatures": {"minItems": index + 1}}}
        signature_index_rules.append(
            {
                "if": {
                    "properties": {
                        "tee": {"properties": {"signatureIndex": {"minimum": index}}, "required": ["signatureIndex"]}
                    },
                    "required": ["tee"],
                },
                "then": {
                    "properties": {"dsseEnvelope": more, "sigstoreBundle": {"properties": {"dsseEnvelope": more}}}
                },
            }
        )
    schema: dict[str, Any] = {
        "title": "Submission",
        "description": "The body of POST /api/v1/entries: a signed statement, what verifies its signatures, and the "
        "TEE evidence that binds it.",
        "oneOf": [
            _variant(
                ref,
                {"dsseEnvelope": {"$ref": ref + "DsseEnvelope"}, "verificationMaterial": material},
                ["dsseEnvelope", "verificationMaterial"],
                "DSSE envelope",
            ),
            _variant(
                ref,
                {"sigstoreBundle": {"$ref": ref + "SigstoreBundleWithCertificates"}, "verificationMaterial": material},
                ["sigstoreBundle"],
                "Sigstore bundle with certificates",
            ),
            _variant(
                ref,
                {"sigstoreBundle": {"$ref": ref + "SigstoreBundleWithKey"}, "verificationMaterial": material},
                ["sigstoreBundle", "verificationMaterial"],
                "Sigstore bundle with a key",
            ),
        ],
        "allOf": signature_index_rules,
    }
    if ref == DEFS:
        return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema, "$defs": _definitions(ref)}
    return schema


def submission_definitions(ref: str) -> dict[str, dict[str, Any]]:
    """The named parts :func:`submission_schema` refers to under ``ref``, by name."""
    return _definitions(ref)


SUBMISSION_SCHEMA = submission_schema()
"""The submission schema as one self-contained JSON Schema document (treat as read-only)."""
