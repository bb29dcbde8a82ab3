"""The explorer on a 1,000-entry history: time from opening the artifact page to its verified status, in
Debian's headless Chromium (target: at most 2 s), cold (a new browser profile: nothing cached, no trusted
checkpoint) and warm (the same page reloaded).

A real server holds a dataset consumed by 1,000 training runs (attested entries, as ``bench/history.py``) and
keeps its verifiable map; the page verifies the checkpoint, 1,000 inclusion proofs, the back-link chain, the
completeness proof and both lineages (1,000 edges down) before it shows ``verified``.
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from atlas_log.testing.simulate import SimulatedPlatform
from bench.common import Server, fresh_database, report
from bench.history import DATASET, _fill

FLAGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-sync"]


def _load(page: Any, url: str) -> tuple[float, str]:
    started = time.perf_counter()
    page.goto(url)
    page.locator('#verification:not([data-verification="pending"])').wait_for(timeout=60_000)
    return (time.perf_counter() - started) * 1000, str(page.locator("#verification").get_attribute("data-verification"))


def main() -> None:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("install Debian's chromium to run this benchmark")
    tmp = Path(tempfile.mkdtemp(prefix="atlas-bench-explorer-"))
    server = Server(fresh_database("atlas_bench_explorer"), tmp / "data", ATLAS_MAP_INTERVAL_S="0.5")
    try:
        asyncio.run(_fill(server.url, SimulatedPlatform.load(tmp / "data" / "simulated-tdx"), 1000))
        vkey = httpx.get(server.url + "/api/v1/log").json()["verifierKey"]
        deadline = time.monotonic() + 60
        while "completeness" not in httpx.get(f"{server.url}/api/v1/artifacts/sha256:{DATASET}/history").json():
            if time.monotonic() > deadline:
                raise RuntimeError("the map did not commit in 60 s")
            time.sleep(0.2)
        time.sleep(1.5)  # the commitment covering the last entries
        url = f"{server.url}/explorer/artifact/sha256:{DATASET}?vkey={vkey}"
        cold, warm = [], []
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, headless=True, args=FLAGS)
            for _ in range(5):
                context = browser.new_context()
                page = context.new_page()
                ms, status = _load(page, url)
                assert status == "ok", status
                cold.append(ms)
                ms, status = _load(page, url)
                assert status == "ok", status
                warm.append(ms)
                context.close()
            browser.close()
    finally:
        server.stop()
    result = {
        "entries": 1000,
        "first_verified_render_ms": {"cold_median": round(statistics.median(cold)), "cold_max": round(max(cold))},
        "reload_verified_render_ms": {"median": round(statistics.median(warm)), "max": round(max(warm))},
        "target_ms": 2000,
        "target_met": max(cold) <= 2000,
    }
    report("explorer", result)


if __name__ == "__main__":
    main()
