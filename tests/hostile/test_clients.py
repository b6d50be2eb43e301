"""The second hostile review: clients that dodge the rate, never read, never finish a request head, hold
idle connections, send bodies that are deep or huge, or ask for heavy work all at once; and /healthz
answers quickly through each."""
from __future__ import annotations

import base64
import io
import json
import socket
import threading
import time
import uuid

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.hostile.conftest import raw
from tests.hostile.test_load import Health
from tests.utils import TINY_MODELS, wait_until

pytestmark = pytest.mark.system
KEY = "tenant-key-0001"


def test_a_made_up_key_per_request_counts_against_its_address(make_server):
    srv = make_server(rate_per_second=5, rate_burst=5, api_keys=KEY)
    with srv.client() as api:
        started = time.monotonic()
        codes = [api.get("/v1/limits", headers={"Authorization": f"Bearer {uuid.uuid4().hex}"}).status_code
                 for _ in range(40)]
        allowed = 5 + 5 * (time.monotonic() - started) + 1  # the burst, and what the rate refilled meanwhile
        assert codes.count(200) <= allowed and codes.count(429) >= 40 - allowed, codes
        assert api.get("/v1/limits", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200  # its own bucket


@pytest.fixture(scope="module")
def keyed(make_server):
    return make_server(api_keys=KEY)


@pytest.mark.parametrize("header", [f"Bearer {KEY}", f"bearer {KEY}", f"BEARER   {KEY}  ", f"  Bearer {KEY}"])
def test_a_key_is_read_the_same_however_its_header_is_spaced_or_cased(keyed, header):
    # raw: an HTTP client trims what a careless one sends
    status, _ = raw(keyed.port, f"GET /v1/jobs HTTP/1.1\nHost: x\nAuthorization: {header}\nConnection: close\n")
    assert status == 200
    status, _ = raw(keyed.port, f"GET /v1/jobs HTTP/1.1\nHost: x\nAuthorization: {header.replace(KEY, 'nope')}\n"
                                "Connection: close\n")
    assert status == 403


def stalled_dataset(port: int) -> socket.socket:
    """A client that asks for a large dataset and never reads a byte of it."""
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    body = json.dumps({"model": "mnist-cgan", "n": 50_000, "format": "tar", "seed": 1}).encode()
    s.sendall(b"POST /v1/datasets HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: "
              + str(len(body)).encode() + b"\r\n\r\n" + body)
    return s


def test_a_reader_that_stops_reading_loses_its_stream_slot(make_server):
    srv = make_server(max_dataset_streams=1, write_seconds=1)
    stalled = stalled_dataset(srv.port)
    try:
        with srv.client() as api:
            body = {"model": "mnist-cgan", "n": 8, "seed": 2}
            wait_until(lambda: api.post("/v1/datasets", json=body).status_code == 503, 10, "the slot taken")
            started = time.monotonic()
            wait_until(lambda: api.post("/v1/datasets", json=body).status_code == 200, 15, "the slot freed")
            assert time.monotonic() - started < 10
    finally:
        stalled.close()


def test_idle_and_slow_header_connections_are_closed_and_a_cap_answers_503(make_server):
    srv = make_server(max_connections=40, header_seconds=1)
    health = Health(srv.url, srv.process.pid)
    health.start()
    slow = socket.create_connection(("127.0.0.1", srv.port))
    slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # a head that never ends
    slow.settimeout(5)
    started = time.monotonic()
    assert slow.recv(4096) == b"" and time.monotonic() - started < 3  # closed at the head deadline
    idle = [socket.create_connection(("127.0.0.1", srv.port)) for _ in range(60)]
    try:
        # beyond the cap, a connection is answered 503 at once (and closed), before its request head
        idle[-1].settimeout(5)
        assert idle[-1].recv(4096).startswith(b"HTTP/1.1 503")
        started = time.monotonic()
        for s in idle[:30]:  # every idle one is closed within the head deadline
            s.settimeout(5)
            assert s.recv(4096) == b""
        assert time.monotonic() - started < 4
        wait_until(lambda: httpx.get(srv.url + "/healthz", timeout=2).status_code == 200, 5, "health")
    finally:
        for s in idle:
            s.close()
        health.done.set()
        health.join()
    assert health.failures == 0 and health.slowest < 1.0, (health.failures, health.slowest)


def fake_redis() -> tuple[socket.socket, str]:
    """A port that accepts connections and never answers: a Redis that hangs."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(512)
    return listener, f"redis://127.0.0.1:{listener.getsockname()[1]}/0"


def p99(times: list[float]) -> float:
    return float(np.percentile(times, 99)) if times else 0.0


class Probe(threading.Thread):
    """Times /healthz every 20 ms until stopped."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url, self.times, self.done = url, [], threading.Event()

    def run(self):
        with httpx.Client(timeout=10) as client:
            while not self.done.is_set():
                started = time.monotonic()
                client.get(self.url + "/healthz")
                self.times.append(time.monotonic() - started)
                time.sleep(0.02)


# What a blocked loop would cost /healthz is 0.5-4 s (a classifier loaded, 13 MB parsed, a version loaded on
# it); on two cores shared with the attack and the test itself a free loop answers within this. The README's
# numbers come from a quiet machine (the target there: p99 <= 100 ms).
FREE_LOOP_P99 = 0.25


def under_load(url: str, attack, clients: int = 8) -> float:
    """/healthz's p99 while `clients` threads run attack(client) each."""
    probe = Probe(url)
    probe.start()
    threads = [threading.Thread(target=attack, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    probe.done.set()
    probe.join()
    return p99(probe.times)


def test_the_event_loop_is_never_blocked(make_server, tmp_path):
    listener, hanging = fake_redis()
    srv = make_server(redis_url=hanging, rate_per_second=0, max_body_bytes=16 * 2**20)
    try:
        with httpx.Client(base_url=srv.url, timeout=60) as api:
            # new thresholds for the filtered mode: the classifier is loaded once, off the loop
            def thresholds(i):
                api.post("/v1/models/mnist-cgan/samples", json={"n": 4, "mode": "filtered", "threshold": 0.1 + i / 20})
            assert under_load(srv.url, thresholds) < FREE_LOOP_P99

            # 13 MB JSON bodies are parsed off the loop
            latents = json.dumps({"latents": np.random.default_rng(0).normal(size=(1024, 600)).tolist()})

            def big_bodies(i):
                api.post("/v1/models/quadratic/samples", content=latents, headers={"content-type": "application/json"})
            assert len(latents) > 10 * 2**20 and under_load(srv.url, big_bodies) < FREE_LOOP_P99

            # /readyz while Redis hangs holds no thread: sync routes stay fast
            def readiness(i):
                for _ in range(10):
                    api.get("/readyz")
                    api.get("/v1/limits")
            assert under_load(srv.url, readiness) < FREE_LOOP_P99
    finally:
        listener.close()


def test_a_version_that_is_not_loaded_is_loaded_off_the_loop(make_server, tmp_path):
    from tests.utils import publish_tiny

    repository = tmp_path / "models"
    for version in range(4):  # 1 is the default; 2-4 are loaded once to check them, then unloaded
        publish_tiny("digits-cyclegan", repository, model="cycle", promote=version == 0)
    srv = make_server(repository)
    image = base64.b64encode(png_of(np.zeros((28, 28), np.uint8))).decode()
    with httpx.Client(base_url=srv.url, timeout=60) as api:
        def first_requests(i):
            r = api.post("/v1/models/cycle/translate", json={"images": [image], "direction": "a_to_b",
                                                             "version": 2 + i % 3})
            assert r.status_code == 200, r.text
        assert under_load(srv.url, first_requests, clients=6) < FREE_LOOP_P99


def png_of(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def test_heavy_sampling_at_once_is_held_to_the_memory_budget(make_server):
    srv = make_server(TINY_MODELS, rate_per_second=0, max_work_bytes=160 * 2**20)
    health = Health(srv.url, srv.process.pid)
    health.start()
    statuses: list[int] = []
    body = {"n": 1024, "mode": "nice", "oversample": 16, "seed": 1, "format": "npy", "labels": None}

    def heavy(i):
        with httpx.Client(base_url=srv.url, timeout=120) as api:
            statuses.append(api.post("/v1/models/mnist-dcgan/samples", json=body).status_code)
    threads = [threading.Thread(target=heavy, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    health.done.set()
    health.join()
    assert set(statuses) <= {200, 503} and 200 in statuses and 503 in statuses, statuses
    assert health.failures == 0 and health.slowest < 1.0


@pytest.mark.parametrize("path", ["/v1/models/quadratic/samples", "/v1/datasets", "/v1/jobs"])
def test_json_nested_a_thousand_deep_is_422_not_500(keyed, path):
    with keyed.client(headers={"Authorization": f"Bearer {KEY}"}) as api:
        deep = '{"labels": ' + "[" * 1000 + "]" * 1000 + "}"
        r = api.post(path, content=deep, headers={"content-type": "application/json"})
        assert r.status_code == 422 and r.json()["error"]["field"] == "body", r.text
        assert api.get("/healthz").status_code == 200  # and the connection and process live on


def test_a_threshold_sent_as_a_string_is_422(serving_api):
    r = serving_api.post("/v1/models/mnist-cgan/samples", json={"n": 2, "mode": "filtered", "threshold": "0.5"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "threshold"
