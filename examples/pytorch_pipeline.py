"""A small, real PyTorch pipeline that records its provenance in Atlas Log, then verifies the deployed model.

dataset -> preprocessing -> training -> evaluation -> deployment, each step hashed, described (SLSA v1,
model-signing digests, test-result, deployment), signed, attested with a TDX quote bound to it (the
simulated platform of a development server, or configfs-tsm inside a real TD), submitted, receipt saved.
At the end it verifies the deployed model's history (gap-free back to its first entry; newer entries cannot
yet be excluded) and upstream lineage against one checkpoint, and
prints JSON with the share of run time spent on provenance.

    make run                                   # in another terminal
    .venv/bin/pip install -e '.[examples]'     # torch and numpy (make test installs them)
    .venv/bin/python examples/pytorch_pipeline.py --workdir ./pipeline-run
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx

try:
    import torch
except ImportError:  # the examples extra is not part of `make run`'s install
    sys.exit("this example needs torch and numpy: .venv/bin/pip install -e '.[examples]'")
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from atlas_log import RetryPolicy
from atlas_log.client import LogClient
from atlas_log.errors import Error, LogUnreachableError
from atlas_log.history import verify_history, verify_lineage
from atlas_log.pipeline import (
    ConfigfsTsmProvider,
    QuoteProvider,
    deployment_statement,
    evaluation_statement,
    hash_file,
    hash_tree,
    model_digest,
    record_step,
    training_statement,
)
from atlas_log.testing.simulate import SimulatedPlatform, SimulatedProvider

BUILDER = "https://atlas-log.dev/examples/pytorch_pipeline"


class Clock:
    """Splits wall time into provenance work and everything else."""

    def __init__(self) -> None:
        self.provenance = 0.0

    def track(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            self.provenance += time.perf_counter() - t


def make_dataset(path: Path, n: int, seed: int) -> None:
    w = torch.randn(16, generator=torch.Generator().manual_seed(0))  # one ground truth for every split
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 16, generator=g)
    y = ((x @ w + 0.3 * torch.randn(n, generator=g)) > 0).long()
    torch.save({"x": x, "y": y}, path)


def preprocess(src: Path, dst: Path) -> None:
    d = torch.load(src)
    mean, std = d["x"].mean(0), d["x"].std(0)
    torch.save({"x": (d["x"] - mean) / std, "y": d["y"], "mean": mean, "std": std}, dst)


def train(data: Path, out: Path, epochs: int, learning_rate: float) -> float:
    torch.manual_seed(0)
    d = torch.load(data)
    model = torch.nn.Sequential(torch.nn.Linear(16, 64), torch.nn.ReLU(), torch.nn.Linear(64, 2))
    opt = torch.optim.Adam(model.parameters(), lr=learning_rate)
    loss_fn = torch.nn.CrossEntropyLoss()
    started = time.perf_counter()
    # A model this small trains fastest on one thread: splitting each 64-sample batch across cores costs more in
    # hand-offs than it saves.
    torch.set_num_threads(1)
    every = max(1, epochs // 6)  # without a terminal, a line now and then says it is still training
    # Progress on the terminal while it trains (stderr: the JSON report on stdout stays clean).
    with Progress(
        TextColumn("training"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("epochs  loss {task.fields[loss]}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
        disable=not sys.stderr.isatty(),
    ) as progress:
        task = progress.add_task("training", total=epochs, loss="-")
        for epoch in range(1, epochs + 1):
            for i in range(0, len(d["x"]), 64):
                opt.zero_grad()
                loss = loss_fn(model(d["x"][i : i + 64]), d["y"][i : i + 64])
                loss.backward()
                opt.step()
            progress.update(task, advance=1, loss=f"{loss.item():.4f}")
            if progress.disable and (epoch % every == 0 or epoch == epochs):
                print(f"training: epoch {epoch}/{epochs}, loss {loss.item():.4f}", file=sys.stderr, flush=True)
    out.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), out / "weights.pt")
    (out / "config.json").write_text(json.dumps({"layers": [16, 64, 2]}))
    return time.perf_counter() - started


def evaluate(model_dir: Path, data: Path, train_stats: Path) -> float:
    model = torch.nn.Sequential(torch.nn.Linear(16, 64), torch.nn.ReLU(), torch.nn.Linear(64, 2))
    model.load_state_dict(torch.load(model_dir / "weights.pt"))
    d, stats = torch.load(data), torch.load(train_stats)
    with torch.no_grad():
        x = (d["x"] - stats["mean"]) / stats["std"]  # the training set's normalisation
        return float((model(x).argmax(1) == d["y"]).float().mean())


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--server",
        default=os.environ.get("ATLAS_LOG_URL", "http://127.0.0.1:8080"),
        help="the log's URL (default: $ATLAS_LOG_URL, else http://127.0.0.1:8080, where make run serves)",
    )
    ap.add_argument(
        "--vkey",
        default=os.environ.get("ATLAS_LOG_VKEY"),
        help="the log's verifier key (default: $ATLAS_LOG_VKEY, else ask the server, and say so)",
    )
    ap.add_argument("--workdir", default="pipeline-run")
    ap.add_argument(
        "--simulated-platform",
        default=str(Path(os.environ.get("ATLAS_DATA_DIR") or ".atlas-log") / "simulated-tdx"),
        help="the development server's simulated TDX platform (default: in its data dir, $ATLAS_DATA_DIR)",
    )
    ap.add_argument("--configfs-tsm", action="store_true", help="quote with /sys/kernel/config/tsm (inside a TD)")
    ap.add_argument("--samples", type=int, default=100_000)
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--learning-rate", type=float, default=1e-3)
    ap.add_argument(
        "--token-file", help="the tenant's bearer token: the log then keeps this run's confidential fields for it"
    )
    args = ap.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    platform = Path(args.simulated_platform)
    if not args.configfs_tsm and not (platform / "platform.json").is_file():
        sys.exit(
            f"no simulated TDX platform in {platform}: run this from the folder make run serves from (it keeps "
            "the platform in .atlas-log/), or give --simulated-platform DIR (or ATLAS_DATA_DIR); inside a real TD, "
            "--configfs-tsm"
        )
    provider: QuoteProvider = (
        ConfigfsTsmProvider() if args.configfs_tsm else SimulatedProvider(SimulatedPlatform.load(platform))
    )
    try:
        return run(args, work, provider)
    except (Error, httpx.HTTPError) as exc:  # the log unreachable, or an answer refused: one line, no traceback
        hint = "; is the log running there? --server (or ATLAS_LOG_URL) names another address"
        print(
            f"pytorch_pipeline: {' '.join(str(exc).split())}{hint if isinstance(exc, LogUnreachableError) else ''}",
            file=sys.stderr,
        )
        return 1


def run(args: argparse.Namespace, work: Path, provider: QuoteProvider) -> int:
    """The five steps, each recorded; then the deployed model's history and lineage verified; prints the report."""
    key = Ed25519PrivateKey.generate()
    clock = Clock()
    run_started = time.perf_counter()
    token = Path(args.token_file).read_text().strip() if args.token_file else None
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    # How long an unanswered request is retried (a log restarting), as atlas-log takes it.
    retry = RetryPolicy(deadline_s=float(os.environ.get("ATLAS_LOG_RETRY_DEADLINE", "30")))
    with httpx.Client(base_url=args.server, timeout=60, headers=auth) as http:
        vkey = args.vkey
        if not vkey:
            vkey = LogClient(http, None, retry=retry).log_info().verifier_key
            print(f"warning: trusting the key the server announced ({vkey}); pin it with --vkey", file=sys.stderr)
        log = LogClient(http, vkey, retry=retry)

        def step(name: str, statement: bytes, confidential: tuple[str, ...] = ()) -> int:
            receipt = clock.track(
                record_step,
                log,
                key,
                statement,
                provider,
                receipt_path=work / f"{name}.receipt.json",
                confidential=confidential,
            )
            print(f"recorded {name} as entry {receipt.log_index}", file=sys.stderr)
            return int(receipt.log_index)

        raw, clean, test = work / "raw.pt", work / "clean.pt", work / "test.pt"
        make_dataset(raw, args.samples, seed=1)
        make_dataset(test, 2_000, seed=2)
        step(
            "dataset",
            clock.track(
                lambda: training_statement(
                    {"raw.pt": hash_file(raw)}, {}, build_type="https://atlas-log.dev/ml/ingest/v1", builder=BUILDER
                )
            ),
        )
        preprocess(raw, clean)
        step(
            "preprocess",
            clock.track(
                lambda: training_statement(
                    {"clean.pt": hash_file(clean)},
                    {"raw.pt": (hash_file(raw), "training-data")},
                    build_type="https://atlas-log.dev/ml/preprocess/v1",
                    builder=BUILDER,
                )
            ),
        )
        training_s = train(clean, work / "model", args.epochs, args.learning_rate)
        files = clock.track(hash_tree, work / "model")
        model = model_digest(files)
        code = clock.track(hash_file, Path(__file__))
        step(
            "train",
            clock.track(
                lambda: training_statement(
                    {"model": model},
                    {"clean.pt": (hash_file(clean), "training-data"), "pipeline.py": (code, "code")},
                    builder=BUILDER,
                    # Where the data lives and how the model was tuned stay the vendor's: hidden behind salted
                    # digests in the signed statement, kept encrypted by the log for the vendor and its grants.
                    parameters={
                        "epochs": args.epochs,
                        "learningRate": args.learning_rate,
                        "datasetPath": str(clean.resolve()),
                    },
                )
            ),
            confidential=(
                "predicate.buildDefinition.externalParameters.parameters.learningRate",
                "predicate.buildDefinition.externalParameters.parameters.datasetPath",
            ),
        )
        print(
            "  its learning rate and dataset path are hidden in the log: "
            + (
                "the tenant of --token-file and its grants read them (atlas-log disclose)"
                if token
                else "without --token-file (a tenant's token), only the log's admin can read them"
            ),
            file=sys.stderr,
        )
        accuracy = evaluate(work / "model", test, clean)
        step(
            "evaluate",
            clock.track(
                lambda: evaluation_statement(
                    ("model", model),
                    {"test.pt": hash_file(test)},
                    "PASSED" if accuracy > 0.8 else "FAILED",
                    {"accuracy": round(accuracy, 4)},
                )
            ),
        )
        service = work / "service.json"
        service.write_text(json.dumps({"model": model, "replicas": 2}))
        step(
            "deploy",
            clock.track(
                lambda: deployment_statement(("service.json", hash_file(service)), {"model": model}, "staging")
            ),
        )
        # The regulator's view: the deployed model's history and upstream, verified against one checkpoint.
        verify_started = time.perf_counter()
        history = verify_history(http.get(f"/api/v1/artifacts/sha256:{model}/history").json(), vkey)
        lineage = verify_lineage(
            http.get(f"/api/v1/artifacts/sha256:{model}/lineage", params={"direction": "up", "depth": 5}).json(), vkey
        )
        verify_s = time.perf_counter() - verify_started
    total = time.perf_counter() - run_started
    report = {
        "model": f"sha256:{model}",
        "accuracy": round(accuracy, 4),
        "history_entries": [e.log_index for e in history.entries],
        "history_gap_free_from": history.gap_free_from,
        "history_complete": history.complete,
        "upstream_edges": len(lineage.edges),
        "training_s": round(training_s, 3),
        "provenance_s": round(clock.provenance, 3),
        "provenance_share_of_training": round(clock.provenance / training_s, 4),
        "provenance_ms_per_step": round(clock.provenance * 1000 / 5, 1),
        "verify_s": round(verify_s, 3),
        "total_s": round(total, 3),
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
