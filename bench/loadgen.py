"""A small HTTP/1.1 load generator, run as its own process so its CPU is not the server's.

Reads requests (one JSON object per line: {"method", "path", "body"?, "headers"?}) from a file, replays them in order
over ``--concurrency`` keep-alive connections (each request is sent once; the run stops when the file is
exhausted or ``--duration`` passes), and prints JSON: throughput, latency percentiles, statuses.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from urllib.parse import urlsplit


async def _worker(
    host: str,
    port: int,
    queue: list[bytes],
    deadline: float,
    latencies: list[float],
    statuses: Counter[int],
    cursor: list[int],
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.monotonic() < deadline:
            i = cursor[0]
            if i >= len(queue):
                return
            cursor[0] = i + 1
            start = time.perf_counter()
            writer.write(queue[i])
            status_line = await reader.readline()
            status = int(status_line.split(b" ", 2)[1])
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            if length:
                await reader.readexactly(length)
            latencies.append(time.perf_counter() - start)
            statuses[status] += 1
    finally:
        writer.close()


def _encode(host: str, req: dict[str, object]) -> bytes:
    body = json.dumps(req["body"]).encode() if "body" in req else b""
    head = f"{req['method']} {req['path']} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(body)}\r\n"
    if body:
        head += "Content-Type: application/json\r\n"
    for name, value in dict(req.get("headers") or {}).items():  # type: ignore[call-overload]
        head += f"{name}: {value}\r\n"
    return head.encode() + b"\r\n" + body


async def run(url: str, path: str, concurrency: int, duration: float, warmup: int) -> dict[str, object]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    with open(path) as f:
        queue = [_encode(host, json.loads(line)) for line in f if line.strip()]
    if warmup:
        shared = [0]
        await asyncio.gather(
            *(
                _worker(host, port, queue[:warmup], time.monotonic() + 300, [], Counter(), shared)
                for _ in range(concurrency)
            )
        )
        queue = queue[warmup:]
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    cursor = [0]
    start = time.monotonic()
    await asyncio.gather(
        *(_worker(host, port, queue, start + duration, latencies, statuses, cursor) for _ in range(concurrency))
    )
    elapsed = time.monotonic() - start
    latencies.sort()

    def pct(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 2) if latencies else 0.0

    return {
        "requests": len(latencies),
        "seconds": round(elapsed, 3),
        "rps": round(len(latencies) / elapsed, 1),
        "latency_ms": {"p50": pct(0.50), "p90": pct(0.90), "p99": pct(0.99), "max": pct(1.0)},
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "concurrency": concurrency,
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--requests", required=True)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--duration", type=float, default=30)
    ap.add_argument("--warmup", type=int, default=0, help="send this many requests first, unmeasured")
    args = ap.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    print(json.dumps(asyncio.run(run(args.url, args.requests, args.concurrency, args.duration, args.warmup))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
