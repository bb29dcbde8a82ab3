"""A hostile network between a client and a real log: a real HTTP server forwarding to the log, rewriting what
a test tells it to."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx


class TamperingProxy:
    """A real HTTP server forwarding to ``upstream``; ``on_submit`` may replace a POSTed body (and query) before
    it is forwarded, ``on_receipt`` may replace the receipt the log answered with, ``on_get`` a JSON answer."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.on_submit: Callable[[dict[str, Any], dict[str, str]], tuple[dict[str, Any], dict[str, str]]] | None = None
        self.on_receipt: Callable[[dict[str, Any]], dict[str, Any]] | None = None
        self.on_get: Callable[[httpx.URL, Any], Any] | None = None  # (upstream URL, JSON answer) -> answer served
        self.on_text: Callable[[httpx.URL, bytes], bytes] | None = None  # the same for any other 200 answer
        # (upstream URL) -> (status, problem) served instead of forwarding the request, or None to forward it
        self.refuse: Callable[[httpx.URL], tuple[int, dict[str, Any]] | None] | None = None
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _forward(self, method: str) -> None:
                url = httpx.URL(proxy.upstream + self.path)
                refusal = proxy.refuse(url) if proxy.refuse is not None else None
                if refusal is not None:
                    problem = json.dumps(refusal[1]).encode()
                    self.send_response(refusal[0])
                    self.send_header("Content-Type", "application/problem+json")
                    self.send_header("Content-Length", str(len(problem)))
                    self.end_headers()
                    self.wfile.write(problem)
                    return
                params = dict(url.params)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if method == "POST" and proxy.on_submit is not None:
                    sub, params = proxy.on_submit(json.loads(body), params)
                    body = json.dumps(sub).encode()
                resp = httpx.request(
                    method,
                    url.copy_with(query=None),
                    params=params,
                    content=body or None,
                    headers={
                        "Content-Type": "application/json",
                        **({"Authorization": a} if (a := self.headers.get("Authorization")) else {}),
                    },
                    timeout=60,
                )
                content = resp.content
                if method == "POST" and resp.status_code in (200, 201) and proxy.on_receipt is not None:
                    content = json.dumps(proxy.on_receipt(resp.json())).encode()
                is_json = resp.headers.get("Content-Type", "").startswith("application/json")
                if method == "GET" and resp.status_code == 200 and is_json and proxy.on_get is not None:
                    content = json.dumps(proxy.on_get(url, resp.json())).encode()
                elif method == "GET" and resp.status_code == 200 and not is_json and proxy.on_text is not None:
                    content = proxy.on_text(url, content)
                self.send_response(resp.status_code)
                self.send_header("Content-Type", resp.headers.get("Content-Type", "application/json"))
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def do_GET(self) -> None:
                self._forward("GET")

            def do_POST(self) -> None:
                self._forward("POST")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
