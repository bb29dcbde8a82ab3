"""Static tiles (atlas_log_server.log.export, `atlas-log-server export-tiles`) and tile-only verification
(LogClient(tiles_only=True)): a plain static file server holding only what the export wrote serves every proof
a verifier needs; a tile changed on the mirror fails the proof; exports are incremental; the compose file's
nginx caches tiles and never the checkpoint."""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from atlas_log.client import LogClient
from atlas_log.errors import Error
from atlas_log.receipt import Receipt
from atlas_log.testing.demo import demo_submission
from atlas_log_server.log.export import Exported
from tests.conftest import ServerProcess, free_port

ROOT = Path(__file__).resolve().parent.parent


class StaticFiles:
    """A plain static file server over a folder (Python's http.server: no API, only files)."""

    def __init__(self, folder: Path) -> None:
        handler = functools.partial(_Quiet, directory=str(folder))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def _export(db_url: str, folder: Path, server: ServerProcess) -> Exported:
    """``atlas-log-server export-tiles FOLDER`` against the log's database, as an operator runs it."""
    out = subprocess.run(
        [sys.executable, "-m", "atlas_log_server.cli", "export-tiles", str(folder)],
        env={**os.environ, "ATLAS_DATABASE_URL": db_url, "ATLAS_DATA_DIR": str(server.data_dir)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    said = re.search(r"exported tree size (\d+) to .*: (\d+) tiles and (\d+) entry bundles written", out.stdout)
    assert said is not None, out.stdout
    return Exported(*(int(n) for n in said.groups()))


@pytest.fixture
def log(db_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(db_url, tmp_path / "data")
    yield server
    server.stop()


def test_receipts_and_histories_verify_against_a_static_mirror(log: ServerProcess, db_url: str, tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    receipts = []
    with httpx.Client(base_url=log.url, timeout=60) as http:
        for n in range(300):  # more than one full tile, and a partial one
            r = http.post("/api/v1/entries", json=demo_submission(key, n, log.platform))
            assert r.status_code == 201, r.text
            receipts.append(Receipt.from_json(r.json()))
    mirror = tmp_path / "mirror"
    first = _export(db_url, mirror, log)
    assert first.size == 300 and first.bundles == 2 and first.tiles >= 3
    assert sorted(p.name for p in mirror.iterdir()) == ["checkpoint", "tile"]
    static = StaticFiles(mirror)
    try:
        with LogClient(static.url, log.vkey, tiles_only=True) as client:
            cp, _ = client.checkpoint()
            assert cp.size == 300
            for receipt in (receipts[0], receipts[255], receipts[299]):
                assert client.verify_receipt_current(receipt).size == 300
            # An artifact's history from the log itself, each entry proved in the mirror's tree.
            with LogClient(log.url, log.vkey) as api:
                subject = api.entry(7).entry.body["index"]["subjects"][0]
                history = api.history(subject)
            for e in history.entries:
                client.verify_inclusion(e.leaf_hash, e.log_index, cp)
        # More entries, exported again: only what changed is written; the old checkpoint's tiles stay.
        with httpx.Client(base_url=log.url, timeout=60) as http:
            for n in range(300, 320):
                assert http.post("/api/v1/entries", json=demo_submission(key, n, log.platform)).status_code == 201
        second = _export(db_url, mirror, log)
        assert second.size == 320 and second.bundles == 1  # the full bundle 000 was not written again
        with LogClient(static.url, log.vkey, tiles_only=True) as client:
            client.checkpoint()
            assert client.verify_receipt_current(receipts[299]).size == 320
            # A tile changed on the mirror makes every proof through it fail.
            tile = mirror / "tile" / "0" / "001.p" / "64"  # the partial tile the checkpoint of 320 commits to
            tile.write_bytes(bytes(len(tile.read_bytes())))
            fresh = LogClient(static.url, log.vkey, tiles_only=True)
            with pytest.raises(Error):
                fresh.verify_receipt_current(receipts[299])
            fresh.close()
    finally:
        static.close()


NGINX = shutil.which("nginx") or (Path("/usr/sbin/nginx") if Path("/usr/sbin/nginx").exists() else None)


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed here (.ci/run installs it): the cache is not checked")
def test_the_compose_nginx_caches_tiles_and_never_the_checkpoint(log: ServerProcess, tmp_path: Path) -> None:
    """deploy/nginx.conf in a real nginx in front of a real log: a tile is served from its cache with the log's
    immutable header on the second read; the checkpoint always comes from the log."""
    key = Ed25519PrivateKey.generate()
    for n in range(3):
        r = httpx.post(log.url + "/api/v1/entries", json=demo_submission(key, n, log.platform), timeout=30)
        assert r.status_code == 201, r.text
    port = free_port()
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    conf = re.sub(r"(\s*server log-\d:8080[^;]*;)+", f"\n        server 127.0.0.1:{log.port};", conf)
    conf = conf.replace("listen 8080;", f"listen 127.0.0.1:{port};")
    cache = tmp_path / "cache"
    cache.mkdir()
    conf = conf.replace("/var/cache/nginx/tiles", str(cache))
    # Run here as this user (pytest's temporary folders are private to it), with its own pid and error files.
    user = "user root;\n" if os.geteuid() == 0 else ""
    conf = f"{user}pid {tmp_path / 'nginx.pid'};\nerror_log {tmp_path / 'error.log'};\n" + conf
    conf = conf.replace("http {", f"http {{\n    access_log off;\n    client_body_temp_path {tmp_path}/body;", 1)
    (tmp_path / "nginx.conf").write_text(conf)
    proc = subprocess.Popen([str(NGINX), "-c", str(tmp_path / "nginx.conf"), "-p", str(tmp_path), "-g", "daemon off;"])
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(url + "/healthz", timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, (tmp_path / "error.log").read_text()
                time.sleep(0.2)
        first = httpx.get(url + "/tile/0/000.p/3")
        second = httpx.get(url + "/tile/0/000.p/3")
        assert first.status_code == second.status_code == 200
        assert first.headers["x-cache-status"] == "MISS" and second.headers["x-cache-status"] == "HIT"
        assert second.content == first.content and "max-age=86400" in second.headers["cache-control"]
        for _ in range(2):
            cp = httpx.get(url + "/checkpoint")
            assert cp.status_code == 200 and "x-cache-status" not in cp.headers
            assert "no-cache" in cp.headers["cache-control"]
    finally:
        proc.terminate()
        proc.wait(10)
