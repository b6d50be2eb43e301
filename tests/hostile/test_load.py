"""Heavy and hostile traffic against one real server: rates, queues, abandoned streams, and the memory and
health of the process throughout (the budget: RSS under 600 MB, /healthz within 1 s)."""
from __future__ import annotations

import socket
import threading
import time

import httpx
import psutil
import pytest

from tests.hostile.conftest import raw
from tests.utils import serve, wait_until

pytestmark = pytest.mark.system


def test_over_its_rate_a_client_gets_429_with_retry_after_and_health_never_does(serving_repository, tmp_path):
    srv = serve(serving_repository, tmp_path, rate_per_second=2, rate_burst=3, api_keys="own-key,other-key")
    with srv.client() as api:
        codes = [api.get("/v1/limits").status_code for _ in range(6)]
        assert codes[:3] == [200] * 3 and 429 in codes[3:]
        refused = api.get("/v1/limits")
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
        assert "rate_per_second" in refused.json()["error"]["message"]
        assert all(api.get("/healthz").status_code == 200 for _ in range(10))
        other = httpx.get(srv.url + "/v1/limits", headers={"Authorization": "Bearer other-key"})
        assert other.status_code == 200  # buckets are per verified key (or address): one client's burst is its own
    srv.stop()


def test_a_key_may_queue_only_so_many_jobs(serving_repository, tmp_path, redis_url):
    own_db = redis_url.rsplit("/", 1)[0] + "/2"  # the session's worker must not take these jobs
    srv = serve(serving_repository, tmp_path, redis_url=own_db, max_queued_jobs=2, reconcile_seconds=3600)
    with srv.client() as api:  # no worker: the jobs stay queued
        codes = [api.post("/v1/jobs", json={"family": "quadratic", "steps": 5}).status_code for _ in range(3)]
        assert codes == [202, 202, 429]
        refused = api.post("/v1/jobs", json={"family": "quadratic", "steps": 5})
        assert "max_queued_jobs" in refused.json()["error"]["message"] and refused.headers["retry-after"]
        for job in api.get("/v1/jobs").json()["jobs"]:
            api.delete(f"/v1/jobs/{job['id']}")
    srv.stop()


class Health(threading.Thread):
    """Polls /healthz and the server's RSS every 0.2 s until stopped; keeps the worst of each."""

    def __init__(self, url: str, pid: int):
        super().__init__(daemon=True)
        self.url, self.process, self.done = url, psutil.Process(pid), threading.Event()
        self.slowest, self.peak_rss, self.failures = 0.0, 0, 0

    def run(self):
        with httpx.Client(timeout=5) as client:
            while not self.done.is_set():
                started = time.monotonic()
                try:
                    ok = client.get(self.url + "/healthz").status_code == 200
                except httpx.HTTPError:
                    ok = False
                self.failures += not ok
                self.slowest = max(self.slowest, time.monotonic() - started)
                self.peak_rss = max(self.peak_rss, self.process.memory_info().rss)
                time.sleep(0.2)


def abandon_stream(port: int, body: bytes, after: float) -> None:
    """Start a dataset stream, read a little of it, and leave."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"POST /v1/datasets HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        s.recv(65536)
        time.sleep(after)


def test_abandoned_streams_and_bombs_leave_the_server_healthy_small_and_idle(serving_repository, tmp_path):
    srv = serve(serving_repository, tmp_path, api_keys="k", max_upload_bytes=2_000_000)
    health = Health(srv.url, srv.process.pid)
    health.start()
    with srv.client() as api:
        # 1. a label-count bomb
        assert api.post("/v1/datasets", json={"model": "mnist-cgan", "labels": {"0": 300000000, "1": -299999990},
                                              "seed": 1}).status_code == 422
        # 2. more large nice datasets than may stream at once, each client leaving after a second
        body = b'{"model": "mnist-cgan", "n": 100000, "mode": "nice", "oversample": 20, "seed": 1}'
        leavers = [threading.Thread(target=abandon_stream, args=(srv.port, body, 1.0)) for _ in range(12)]
        for t in leavers:
            t.start()
        for t in leavers:
            t.join()
        # 3. bodies without a key, and over the size
        for _ in range(20):
            status, _ = raw(srv.port, "POST /v1/data HTTP/1.1\nHost: x\nContent-Type: multipart/form-data; "
                            "boundary=b\nContent-Length: 1500000000\n", b"--b\r\n", timeout=2)
            assert status == 401
        # 4. the streams stop once their clients are gone: the process goes quiet within a few seconds
        process = psutil.Process(srv.process.pid)
        process.cpu_percent()
        wait_until(lambda: (time.sleep(1.0), process.cpu_percent())[1] < 25, 10, "the server idle again")
        assert api.get("/v1/models").status_code == 200
    health.done.set()
    health.join()
    srv.stop()
    assert health.failures == 0 and health.slowest < 1.0, (health.failures, health.slowest)
    assert health.peak_rss < 600 * 2**20, health.peak_rss
