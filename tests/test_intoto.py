from __future__ import annotations

import base64
import json

import pytest

from atlas_log.errors import FormatError
from atlas_log.intoto import (
    DEPLOYMENT_V1,
    MODEL_SIGNING_V1,
    SLSA_V02,
    SLSA_V1,
    TEST_RESULT,
    extract,
    normalise_digest,
    parse_statement,
)
from atlas_log.submission import INTOTO_PAYLOAD_TYPE, intoto_statement
from tests.vectors import vectors_dir

H = {c: c * 64 for c in "abcdef"}


def _stmt(
    pt: str, predicate: dict, subjects: list | None = None, kind: str = "https://in-toto.io/Statement/v1"
) -> bytes:  # type: ignore[type-arg]
    return json.dumps(
        {
            "_type": kind,
            "subject": subjects or [{"name": "model", "digest": {"sha256": H["a"]}}],
            "predicateType": pt,
            "predicate": predicate,
        }
    ).encode()


def test_digest_normalisation() -> None:
    assert normalise_digest("SHA-256", H["a"].upper()) == ("sha256", H["a"])
    assert normalise_digest("sha2-256", H["b"]) == ("sha256", H["b"])
    assert normalise_digest("gitCommit", "ab" * 20) == ("gitCommit", "ab" * 20)
    for alg, value in (("sha256", "ab"), ("sha256", "zz" * 32), ("sha1", "ab" * 21)):
        with pytest.raises(FormatError):
            normalise_digest(alg, value)


def test_slsa_v1_materials_everywhere() -> None:
    pred = {
        "buildDefinition": {
            "buildType": "https://atlas-log.dev/ml/training/v1",
            "externalParameters": {
                "inputs": [
                    {"name": "train.parquet", "digest": {"sha256": H["b"]}, "annotations": {"mlRole": "training-data"}}
                ],
                "nested": {"deep": {"base": {"uri": "hf://base", "digest": {"sha256": H["c"]}}}},
            },
            "resolvedDependencies": [{"uri": "git+https://x", "digest": {"gitCommit": "12" * 20}}],
        },
        "runDetails": {
            "builder": {"id": "https://builder", "builderDependencies": [{"digest": {"sha256": H["d"]}}]},
            "byproducts": [{"name": "log", "digest": {"sha256": H["e"]}}],
        },
    }
    ex = extract(INTOTO_PAYLOAD_TYPE, _stmt(SLSA_V1, pred))
    roles = {(f.role, f.digests[0][1]) for f in ex.facts}
    assert ("subject", H["a"]) in roles and ("material", H["b"]) in roles and ("material", H["c"]) in roles
    assert ("material", "12" * 20) in roles and ("builder_dep", H["d"]) in roles and ("byproduct", H["e"]) in roles
    paths = {f.digests[0][1]: f.path for f in ex.facts}
    assert paths[H["c"]] == "$.predicate.buildDefinition.externalParameters.nested.deep.base"
    assert dict(ex.metadata)["builderId"] == "https://builder"
    with pytest.raises(FormatError):
        extract(INTOTO_PAYLOAD_TYPE, _stmt(SLSA_V1, {"buildDefinition": {}}))


def test_slsa_v02_is_legacy_and_has_materials() -> None:
    pred = {
        "builder": {"id": "b"},
        "materials": [{"uri": "git+x", "digest": {"sha1": "ab" * 20}}],
        "invocation": {"configSource": {"uri": "cfg", "digest": {"sha256": H["f"]}}},
    }
    ex = extract(INTOTO_PAYLOAD_TYPE, _stmt(SLSA_V02, pred, kind="https://in-toto.io/Statement/v0.1"))
    assert ex.legacy and ex.digests("material") == sorted([f"sha1:{'ab' * 20}", f"sha256:{H['f']}"])


def test_test_result_and_deployment() -> None:
    ex = extract(
        INTOTO_PAYLOAD_TYPE, _stmt(TEST_RESULT, {"result": "PASSED", "configuration": [{"digest": {"sha256": H["b"]}}]})
    )
    assert ex.digests("evaluated") == [f"sha256:{H['a']}"] and ex.digests("eval_data") == [f"sha256:{H['b']}"]
    figures = {
        "result": "FAILED",
        "metrics": {"auc": 0.97, "passed": True, "split": "test", "curve": [0.1, 0.2], "n": 10},
        "passedTests": ["a", "b"],
        "failedTests": ["c"],
    }
    assert dict(extract(INTOTO_PAYLOAD_TYPE, _stmt(TEST_RESULT, figures)).metadata) == {
        "result": "FAILED",
        "metric:auc": "0.97",
        "metric:passed": "true",
        "metric:split": "test",
        "metric:n": "10",  # a list is no figure to show
        "passedTests": "2",
        "failedTests": "1",
    }
    dep = extract(
        INTOTO_PAYLOAD_TYPE,
        _stmt(
            DEPLOYMENT_V1,
            {"models": [{"digest": {"sha256": H["c"]}}], "environment": "prod"},
            [{"name": "svc", "digest": {"sha256": H["d"]}}],
        ),
    )
    assert dep.digests("material") == [f"sha256:{H['c']}"] and dict(dep.metadata)["environment"] == "prod"


@pytest.mark.parametrize("case", ["v1.1.0-elliptic-key", "v1.1.0-certificate"])
def test_real_model_signing_bundles(case: str) -> None:
    d = vectors_dir("model-signing", case)
    bundle = json.loads((d / "model.sig").read_text())
    env = bundle["dsseEnvelope"]
    ex = extract(env["payloadType"], base64.b64decode(env["payload"]))
    assert ex.predicate_type == MODEL_SIGNING_V1
    import hashlib

    files = {name: hashlib.sha256((d / name).read_bytes()).hexdigest() for name in ("signme-1", "signme-2")}
    components = {f.name: f.digests[0][1] for f in ex.facts if f.role == "component"}
    assert components == files
    root = hashlib.sha256(bytes.fromhex(files["signme-1"]) + bytes.fromhex(files["signme-2"])).hexdigest()
    assert ex.digests("subject") == [f"sha256:{root}"]


def test_model_signing_root_must_match() -> None:
    pred = {
        "serialization": {"hash_type": "sha256"},
        "resources": [{"name": "a", "algorithm": "sha256", "digest": H["b"]}],
    }
    with pytest.raises(FormatError, match="root digest"):
        extract(INTOTO_PAYLOAD_TYPE, _stmt(MODEL_SIGNING_V1, pred))


@pytest.mark.parametrize(
    "bad",
    [
        b"[]",
        b"{}",
        b'{"_type":"https://in-toto.io/Statement/v1","subject":[],"predicateType":"x:y"}',
        b'{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{}}],"predicateType":"x:y"}',
        b'{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"sha256":"ab"}}],"predicateType":"x:y"}',
        b'{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"sha256":"' + b"a" * 64 + b'"}}],'
        b'"predicateType":"not a uri"}',
    ],
)
def test_bad_statements(bad: bytes) -> None:
    with pytest.raises(FormatError):
        parse_statement(bad)


def test_other_predicates_keep_subjects_only() -> None:
    ex = extract(INTOTO_PAYLOAD_TYPE, intoto_statement([("x", H["a"])], "https://example.com/p", {"k": 1}))
    assert [f.role for f in ex.facts] == ["subject"]
    assert extract("text/plain", b"anything").facts == ()


def test_versions_come_from_annotations() -> None:
    stmt = json.dumps(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "predicateType": "https://example.com/p",
            "predicate": {},
            "subject": [{"name": "fraud-detector", "digest": {"sha256": H["a"]}, "annotations": {"version": "2.1.0"}}],
        }
    ).encode()
    (fact,) = extract(INTOTO_PAYLOAD_TYPE, stmt).facts
    assert (fact.name, fact.version) == ("fraud-detector", "2.1.0")
