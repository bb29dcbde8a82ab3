"""Prometheus metrics, served at ``/metrics``.

One :class:`Metrics` per app, on its own registry, handed to the components that count. With several worker
processes (``serve --workers N``) every process writes its samples to ``PROMETHEUS_MULTIPROC_DIR`` (the
supervisor sets it) and ``/metrics`` aggregates all of them, whichever worker answers the scrape.
"""

from __future__ import annotations

import os

from fastapi import APIRouter, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

_BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """The log's metrics. Names carry the ``atlas_`` prefix; reasons are problem types (stable)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.admissions = Counter(
            "atlas_admissions", "submissions by outcome: logged, existing, or the problem type", ["outcome"], registry=r
        )
        self.batch_entries = Histogram(
            "atlas_batch_entries", "entries per sequencing batch", buckets=_BATCH_SIZES, registry=r
        )
        self.batch_seconds = Histogram(
            "atlas_batch_seconds", "time to append one batch (transaction and signing)", buckets=_SECONDS, registry=r
        )
        self.receipt_seconds = Histogram(
            "atlas_receipt_seconds", "submission to receipt, for logged entries", buckets=_SECONDS, registry=r
        )
        self.tree_size = Gauge("atlas_tree_size", "entries in the log", multiprocess_mode="max", registry=r)
        self.collateral_expiry = Gauge(
            "atlas_collateral_expiry_seconds",
            "seconds until the cached collateral of a platform expires",
            ["platform"],
            multiprocess_mode="livemin",  # a dead worker's last value does not hold it down
            registry=r,
        )
        self.collateral_refresh_failures = Counter(
            "atlas_collateral_refresh_failures", "collateral refreshes that failed", registry=r
        )
        self.cosignatures = Counter(
            "atlas_witness_cosignatures",
            "witness cosigning attempts by witness and outcome",
            ["witness", "outcome"],
            registry=r,
        )
        self.tile_cache_tiles = Gauge(
            "atlas_tile_cache_tiles", "tiles in the proof cache, per process", multiprocess_mode="liveall", registry=r
        )

    def exposition(self) -> bytes:
        """The text exposition: this process's samples, or every worker's in multi-process mode."""
        if os.environ.get(MULTIPROC_ENV):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)


def forget_worker(pid: int) -> None:
    """Drop the live gauges of a worker process that exited (its counts stay in the totals)."""
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


router = APIRouter(tags=["operations"])


@router.get(
    "/metrics",
    summary="Prometheus metrics (text exposition format)",
    response_class=Response,
    responses={200: {"description": "the metrics", "content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
)
async def metrics(request: Request) -> Response:
    m: Metrics = request.app.state.metrics
    return Response(m.exposition(), media_type=CONTENT_TYPE_LATEST)
