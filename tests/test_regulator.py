"""A regulator's questions about a realistic multi-stage ML pipeline, each answered from verified log data.

Pipeline (two teams, two keys, every step attested by a simulated TDX quote):
  #0 ingest:      source.csv                          -> raw-v1            (data team)
  #1 preprocess:  raw-v1                              -> clean-v1          (data team)
  #2 base model:  model-signing of base-7b files      -> base-7b           (ml team)
  #3 train:       clean-v1 + base-7b + train.py       -> fraud-detector v1 (ml team)
  #4 evaluate:    fraud-detector v1 on test-v1        -> PASSED            (ml team)
  #5 deploy:      fraud-detector v1                   -> fraud-svc (prod)  (ml team)
  #6 train:       clean-v2 + fraud-detector v1        -> fraud-detector v2 (ml team)
  #7 deploy:      fraud-detector v2 (never evaluated) -> fraud-svc-2       (ml team)
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from atlas_log.client import LogClient
from atlas_log.history import HistoryCache, verify_history, verify_lineage
from atlas_log.intoto import DEPLOYMENT_V1, SLSA_V1, TEST_RESULT
from atlas_log.pipeline import (
    deployment_statement,
    evaluation_statement,
    model_digest,
    model_statement,
    record_step,
    training_statement,
)
from atlas_log.submission import spki_der
from atlas_log.testing.simulate import SimulatedProvider
from tests.conftest import ServerProcess


def h(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


D = {
    n: h(n) for n in ("source.csv", "raw-v1", "clean-v1", "clean-v2", "train.py", "test-v1", "fraud-svc", "fraud-svc-2")
}
BASE_FILES = {"config.json": h("cfg"), "weights.safetensors": h("w")}
D["base-7b"] = model_digest(BASE_FILES)
D["m1"], D["m2"] = h("fraud-detector-1"), h("fraud-detector-2")


def sha(name: str) -> str:
    return f"sha256:{D[name]}"


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory, pg_url: str, template_db: str) -> Any:
    from tests.conftest import copy_database

    url = copy_database(pg_url, template_db, f"atlas_regulator_{id(tmp_path_factory)}")
    server = ServerProcess(url, tmp_path_factory.mktemp("reg") / "data")
    data_key, ml_key = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    http = httpx.Client(base_url=server.url, timeout=30)
    client = LogClient(http, server.vkey)
    tee = SimulatedProvider(server.platform)
    builder = "https://pipelines.example.com/fraud"
    steps = [
        (
            data_key,
            training_statement(
                {"raw-v1": D["raw-v1"]},
                {"source.csv": (D["source.csv"], "training-data")},
                build_type="https://atlas-log.dev/ml/ingest/v1",
                builder=builder,
            ),
        ),
        (
            data_key,
            training_statement(
                {"clean-v1": D["clean-v1"]},
                {"raw-v1": (D["raw-v1"], "training-data")},
                build_type="https://atlas-log.dev/ml/preprocess/v1",
                builder=builder,
            ),
        ),
        (ml_key, model_statement("base-7b", BASE_FILES)),
        (
            ml_key,
            training_statement(
                {"fraud-detector": D["m1"]},
                {
                    "clean-v1": (D["clean-v1"], "training-data"),
                    "base-7b": (D["base-7b"], "base-model"),
                    "train.py": (D["train.py"], "code"),
                },
                builder=builder,
                parameters={"epochs": 3},
            ),
        ),
        (ml_key, evaluation_statement(("fraud-detector", D["m1"]), {"test-v1": D["test-v1"]}, "PASSED", {"auc": 0.97})),
        (ml_key, deployment_statement(("fraud-svc", D["fraud-svc"]), {"fraud-detector": D["m1"]}, "prod")),
        (
            ml_key,
            training_statement(
                {"fraud-detector": D["m2"]},
                {"clean-v2": (D["clean-v2"], "training-data"), "fraud-detector": (D["m1"], "base-model")},
                builder=builder,
            ),
        ),
        (ml_key, deployment_statement(("fraud-svc-2", D["fraud-svc-2"]), {"fraud-detector": D["m2"]}, "prod")),
    ]
    for i, (key, statement) in enumerate(steps):
        assert record_step(client, key, statement, tee).log_index == i
    yield server, http, {"data": spki_der(data_key), "ml": spki_der(ml_key)}
    http.close()
    server.stop()


def _lineage(server: ServerProcess, http: httpx.Client, digest: str, direction: str, depth: int = 10) -> Any:
    answer = http.get(f"/api/v1/artifacts/{digest}/lineage", params={"direction": direction, "depth": depth}).json()
    return verify_lineage(answer, server.vkey)


def _history(server: ServerProcess, http: httpx.Client, digest: str, cache: HistoryCache | None = None) -> Any:
    return verify_history(http.get(f"/api/v1/artifacts/{digest}/history").json(), server.vkey, cache=cache)


def _ptype(entry: Any) -> str:
    return str(entry.entry.body["index"]["predicateType"])


def test_q1_full_upstream_of_a_deployed_model(pipeline: Any) -> None:
    server, http, _ = pipeline
    up = _lineage(server, http, sha("fraud-svc"), "up")
    edges = {(s, t) for s, t, _ in up.edges}
    assert (sha("m1"), sha("fraud-svc")) in edges  # deployed model
    assert {(sha("clean-v1"), sha("m1")), (sha("base-7b"), sha("m1")), (sha("train.py"), sha("m1"))} <= edges
    assert {(sha("raw-v1"), sha("clean-v1")), (sha("source.csv"), sha("raw-v1"))} <= edges  # datasets, transitively
    assert (sha("test-v1"), sha("m1")) in edges  # its evaluation data
    kinds = {idx: _ptype(v) for idx, v in up.entries.items()}
    assert kinds[4] == TEST_RESULT and kinds[5] == DEPLOYMENT_V1 and kinds[3] == SLSA_V1
    assert sha("m2") not in up.nodes


def test_lineage_names_each_edge_by_its_role(pipeline: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """A model's test data is its evaluation's data, never one of its training inputs: in the API, in the
    client's verified lineage (from the proved leaf), and in the command line's tree and JSON."""
    from atlas_log import cli

    server, http, _ = pipeline
    answer = http.get(f"/api/v1/artifacts/{sha('m1')}/lineage", params={"direction": "up", "depth": 1}).json()
    served = {(e["from"], e["to"]): e["role"] for e in answer["edges"]}
    assert served[(sha("test-v1"), sha("m1"))] == "evaluation data"
    assert served[(sha("clean-v1"), sha("m1"))] == "input"
    up = verify_lineage(answer, server.vkey)
    assert {(s, up.role(i)) for s, t, i in up.edges if t == sha("m1")} >= {
        (sha("test-v1"), "evaluation data"),
        (sha("clean-v1"), "input"),
    }
    base = ["--server", server.url, "--vkey", server.vkey, "lineage", sha("m1"), "--depth", "1"]
    assert cli.main(base) == 0
    tree = capsys.readouterr().out
    test_line = next(line for line in tree.splitlines() if sha("test-v1") in line)
    train_line = next(line for line in tree.splitlines() if sha("clean-v1") in line)
    assert "test-v1" in test_line and "evaluation data of entry #4" in test_line, tree
    assert "clean-v1" in train_line and "input of entry #3" in train_line, tree
    assert cli.main([*base, "--json"]) == 0
    edges = {(e["from"], e["role"]) for e in json.loads(capsys.readouterr().out)["edges"]}
    assert (sha("test-v1"), "evaluation data") in edges and (sha("test-v1"), "input") not in edges


def test_q2_every_model_trained_on_a_dataset(pipeline: Any) -> None:
    server, http, _ = pipeline
    down = _lineage(server, http, sha("clean-v1"), "down")
    trained = {t for s, t, idx in down.edges if _ptype(down.entries[idx]) == SLSA_V1}
    assert trained == {sha("m1"), sha("m2")}  # m2 through fine-tuning m1
    assert {t for s, t, _ in down.edges if s == sha("clean-v1")} == {sha("m1")}


def _statement(http: httpx.Client, v: Any) -> dict[str, Any]:
    """The statement an entry logged, fetched from the log and checked against the verified leaf's hash."""
    import base64
    import json

    submission = http.get(f"/api/v1/entries/{v.log_index}").json()["submission"]
    payload = base64.b64decode(submission["dsseEnvelope"]["payload"])
    assert hashlib.sha256(payload).hexdigest() == v.entry.body["payloadHash"]["sha256"]
    result: dict[str, Any] = json.loads(payload)
    return result


def test_q3_every_version_of_a_named_model(pipeline: Any) -> None:
    import base64

    from atlas_log.entry import parse_leaf

    server, http, _ = pipeline
    found = http.get("/api/v1/search", params={"name": "Fraud-Detector", "predicateType": SLSA_V1}).json()
    versions = {}
    for item in found["entries"]:
        for subject in parse_leaf(base64.b64decode(item["leaf"])).body["index"]["subjects"]:
            up = _lineage(server, http, subject, "up", 1)
            evals = [
                (v.log_index, _statement(http, v)["predicate"]["result"])
                for v in _history(server, http, subject).entries
                if _ptype(v) == TEST_RESULT
            ]
            versions[subject] = ({s for s, t, _ in up.edges if t == subject}, evals)
    assert versions[sha("m1")][0] == {sha("clean-v1"), sha("base-7b"), sha("train.py"), sha("test-v1")}
    assert versions[sha("m1")][1] == [(4, "PASSED")]
    assert versions[sha("m2")][0] == {sha("clean-v2"), sha("m1")} and versions[sha("m2")][1] == []


def test_q4_who_signed_each_step_under_which_tdx_state(pipeline: Any) -> None:
    server, http, keys = pipeline
    fp = {team: hashlib.sha256(spki).hexdigest() for team, spki in keys.items()}
    up = _lineage(server, http, sha("fraud-svc"), "up")
    for idx, v in up.entries.items():
        body = v.entry.body
        signer = body["signatures"][0]["verifier"]["spkiSha256"]
        assert signer == (fp["data"] if idx in (0, 1) else fp["ml"])
        tee = body["tee"]
        assert tee["tcbStatus"] == "UpToDate" and len(tee["mrTd"]) == 96 and tee["spkiSha256"] == signer
        assert tee["simulated"] is True
    by_signer = http.get("/api/v1/search", params={"signer": f"sha256:{fp['data']}"}).json()
    assert [e["logIndex"] for e in by_signer["entries"]] == [1, 0]


def test_q5_was_each_model_evaluated_before_deployment(pipeline: Any) -> None:
    server, http, _ = pipeline
    cache = HistoryCache()
    answers = {}
    for model in ("m1", "m2"):
        hist = _history(server, http, sha(model), cache)
        # The answer rests on what was proved: nothing was dropped from the newest entry back to the first.
        assert hist.gap_free_from == hist.entries[0].log_index and not hist.complete
        evals = [v.log_index for v in hist.entries if _ptype(v) == TEST_RESULT]
        deploys = [v.log_index for v in hist.entries if _ptype(v) == DEPLOYMENT_V1]
        answers[model] = bool(deploys) and bool(evals) and min(evals) < min(deploys)
    assert answers == {"m1": True, "m2": False}


def test_search_filters_and_errors(pipeline: Any) -> None:
    _, http, _ = pipeline
    deploys = http.get("/api/v1/search", params={"predicateType": DEPLOYMENT_V1}).json()
    assert [e["logIndex"] for e in deploys["entries"]] == [7, 5]
    # A search says what it proves: each entry's inclusion, not that no match is missing.
    assert deploys["proves"] == "inclusion"
    page = http.get("/api/v1/search", params={"predicateType": SLSA_V1, "limit": 2}).json()
    assert len(page["entries"]) == 2 and page["next"] is not None
    assert http.get("/api/v1/search", params={"from": 0, "to": 1}).json()["entries"] == []
    assert http.get("/api/v1/search").status_code == 400


def test_search_reports_names_and_versions(server: ServerProcess) -> None:
    import json

    from atlas_log.submission import signed_submission

    key = Ed25519PrivateKey.generate()
    for version, digest in (("1.0", h("v1")), ("2.0", h("v2"))):
        statement = json.dumps(
            {
                "_type": "https://in-toto.io/Statement/v1",
                "predicateType": "https://example.com/p",
                "predicate": {},
                "subject": [{"name": "Churn-Model", "digest": {"sha256": digest}, "annotations": {"version": version}}],
            }
        ).encode()
        r = httpx.post(server.url + "/api/v1/entries", json=signed_submission(key, statement, server.platform))
        assert r.status_code == 201, r.text
    found = httpx.get(server.url + "/api/v1/search", params={"name": "churn-model"}).json()
    versions = {a["version"]: a["digest"] for e in found["entries"] for a in e["artifacts"]}
    assert versions == {"1.0": f"sha256:{h('v1')}", "2.0": f"sha256:{h('v2')}"}
