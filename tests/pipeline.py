"""A small ML pipeline recorded in a real log that keeps its verifiable map: a raw dataset is preprocessed,
a model is trained on the clean dataset with a training script, evaluated on a test set and deployed."""

from __future__ import annotations

import time

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from atlas_log.client import LogClient
from atlas_log.pipeline import deployment_statement, evaluation_statement, record_step, training_statement
from atlas_log.testing.simulate import SimulatedProvider
from tests.conftest import ServerProcess
from tests.test_regulator import D, sha

MODEL = sha("m1")


def record_pipeline(server: ServerProcess, *more: bytes) -> None:
    """Record the four steps (and ``more`` statements after them), then wait until the map commits them all."""
    key = Ed25519PrivateKey.generate()
    tee = SimulatedProvider(server.platform)
    builder = "https://pipelines.example.com/fraud"
    steps = [
        training_statement(
            {"clean-dataset": D["clean-v1"]},
            {"raw-dataset": (D["raw-v1"], "training-data")},
            build_type="https://atlas-log.dev/ml/preprocess/v1",
            builder=builder,
        ),
        training_statement(
            {"fraud-detector": D["m1"]},
            {"clean-dataset": (D["clean-v1"], "training-data"), "train.py": (D["train.py"], "code")},
            builder=builder,
        ),
        evaluation_statement(("fraud-detector", D["m1"]), {"test-dataset": D["test-v1"]}, "PASSED", {"auc": 0.97}),
        deployment_statement(("fraud-svc", D["fraud-svc"]), {"fraud-detector": D["m1"]}, "prod"),
    ]
    with httpx.Client(base_url=server.url, timeout=30) as http:
        client = LogClient(http, server.vkey)
        for statement in [*steps, *more]:
            record_step(client, key, statement, tee)
        size = client.checkpoint()[0].size
        deadline = time.monotonic() + 30
        while True:
            status = client.map_status()
            if status.commitment is not None and status.commitment.tree_size >= size:
                return
            assert time.monotonic() < deadline, "the map never committed the pipeline"
            time.sleep(0.1)
