"""A lean HTTP/1.1 load generator: C keep-alive connections, each posting the same JSON in a loop.

    python benchmarks/loadgen.py URL BODY_JSON CONCURRENCY SECONDS [MAX_REQUESTS]

Prints one JSON line: requests, errors (by status), latency percentiles and the generator's own
CPU seconds. Raw asyncio streams rather than an HTTP client library, so that on two shared cores
the load generator takes as little CPU from the server as it can. Only 127.0.0.1 is allowed, and
the run is bounded in time and in requests.
"""
from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from urllib.parse import urlsplit


async def _worker(host: str, port: int, request: bytes, stop: float, budget: list[int], latencies: list[float],
                  statuses: dict[int, int]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < stop and budget[0] > 0:
            budget[0] -= 1
            started = time.perf_counter()
            writer.write(request)
            status_line = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            status = int(status_line.split()[1])
            statuses[status] = statuses.get(status, 0) + 1
    finally:
        writer.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))] if ordered else float("nan")


async def run(url: str, body: str, concurrency: int, seconds: float, max_requests: int) -> dict:
    parts = urlsplit(url)
    if parts.hostname != "127.0.0.1":
        raise SystemExit("load only to 127.0.0.1")
    payload = body.encode()
    method = "POST" if payload else "GET"  # an empty body: GET
    request = (f"{method} {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(payload)}\r\n\r\n").encode() + payload
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    budget = [max_requests]
    cpu0, wall0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    stop = wall0 + seconds
    await asyncio.gather(*(_worker(parts.hostname, parts.port, request, stop, budget, latencies, statuses)
                           for _ in range(concurrency)))
    wall = time.perf_counter() - wall0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    return {"requests": len(latencies), "seconds": wall, "statuses": statuses,
            "p50": percentile(latencies, 50), "p99": percentile(latencies, 99),
            "cpu": (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)}


def main() -> None:
    url, body, concurrency, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    max_requests = int(sys.argv[5]) if len(sys.argv) > 5 else 10_000_000
    print(json.dumps(asyncio.run(run(url, body, concurrency, seconds, max_requests))))


if __name__ == "__main__":
    main()
