"""Archives that inflate far past their size, sent by 8 clients at once: the server's RSS stays bounded because
the reader refuses from headers and decodes a slice at a time, and /healthz keeps answering.

Measured on main before the reader (2 cores): the float64 npz cost +2.7 GB at 8 at once, a float32 upload
+770 MB each. The bounds below are a few times what this reader measured, far below those."""
from __future__ import annotations

import concurrent.futures
import io
import threading
import time

import httpx
import numpy as np
import psutil
import pytest

from tests.utils import serve

pytestmark = pytest.mark.system
KEY = "memory-key-51d0"
CLIENTS = 8
MB = 2**20


class Peak(threading.Thread):
    """The server's peak RSS, sampled every 10 ms, and the slowest /healthz, until stopped."""

    def __init__(self, srv):
        super().__init__(daemon=True)
        self.process, self.url, self.done = psutil.Process(srv.process.pid), srv.url, threading.Event()
        self.rss, self.slowest = self.process.memory_info().rss, 0.0

    def run(self):
        last = 0.0
        with httpx.Client(timeout=5) as client:
            while not self.done.wait(0.01):
                self.rss = max(self.rss, self.process.memory_info().rss)
                if time.monotonic() - last > 0.2:
                    started = last = time.monotonic()
                    ok = client.get(self.url + "/healthz").status_code == 200
                    self.slowest = max(self.slowest, time.monotonic() - started if ok else 99.0)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *_):
        self.done.set()
        self.join()


def digits(n: int, size: int, dtype, seed: int = 0) -> np.ndarray:
    """n images of ink on a dark ground, in 17 grey levels in [0, 1] (so they deflate well, as digits do)."""
    x = np.zeros((n, size, size), dtype)
    ink = min(40, size // 2)
    lo = (size - ink) // 2
    x[:, lo:lo + ink, lo:lo + ink] = np.random.default_rng(seed).integers(0, 17, (n, ink, ink)) / 16
    return x


def npz(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def server(serving_repository, tmp_path_factory):
    """A keyed server with the default limits (as the review attacked it)."""
    srv = serve(serving_repository, tmp_path_factory.mktemp("memory"), api_keys=KEY, rate_per_second=0)
    yield srv
    srv.stop()


def at_once(call, count: int = CLIENTS) -> list[httpx.Response]:
    with concurrent.futures.ThreadPoolExecutor(count) as pool:
        return list(pool.map(lambda _: call(), range(count)))


def translate(srv, data: bytes, fmt: str = "npy") -> httpx.Response:
    return httpx.post(srv.url + "/v1/models/digits-cyclegan/translate", files={"file": ("x.npz", data)},
                      data={"direction": "a_to_b", "format": fmt}, timeout=120)


def upload(srv, data: bytes) -> httpx.Response:
    return httpx.post(srv.url + "/v1/data", files={"file": ("x.npz", data)},
                      headers={"Authorization": f"Bearer {KEY}"}, timeout=120)


def warm(srv) -> int:
    """The server's RSS after one small translation and one small upload (their code paths loaded)."""
    assert translate(srv, npz(x=digits(4, 28, np.float32))).status_code == 200
    assert upload(srv, npz(x=digits(4, 28, np.float32))).status_code == 201
    return psutil.Process(srv.process.pid).memory_info().rss


def test_a_float64_npz_that_inflates_to_128_mb_is_refused_before_it_inflates(server):
    data = npz(x=digits(1024, 125, np.float64))  # 16,000,000 pixels: within max_translate_pixels
    assert len(data) < 4 * MB
    base = warm(server)
    with Peak(server) as peak:
        answers = at_once(lambda: translate(server, data))
    for r in answers:
        assert r.status_code == 422, r.text
        assert r.json()["error"]["message"] == ("x.npz: inflates to 128000000 bytes, over the limit of 64000000 "
                                                "(4 bytes a pixel of max_translate_pixels)")
    print(f"float64 translate x{CLIENTS}: +{(peak.rss - base) / MB:.0f} MB")
    assert peak.rss - base < 150 * MB, (peak.rss - base) / MB  # the bodies themselves, and their parsing
    assert peak.slowest < 1.0, peak.slowest


def test_a_float32_npz_at_the_pixel_limit_is_translated_a_slice_at_a_time(server):
    data = npz(x=digits(1024, 125, np.float32))  # 64 MB of pixels once inflated (+890 MB at 8 at once before)
    warm(server)
    # The same translation work from inputs that cost nothing to decode (1024 uint8 28×28): what it takes
    # (onnxruntime's arenas, the answers) is held before the measurement, which is then of decoding alone.
    same_work = npz(x=(digits(1024, 28, np.float32) * 255).astype(np.uint8))
    assert {r.status_code for r in at_once(lambda: translate(server, same_work))} == {200}
    base = psutil.Process(server.process.pid).memory_info().rss
    with Peak(server) as peak:
        answers = at_once(lambda: translate(server, data))
    for r in answers:
        assert r.status_code == 200, r.text
        assert np.load(io.BytesIO(r.content)).shape == (1024, 28, 28)
    print(f"float32 translate x{CLIENTS}: +{(peak.rss - base) / MB:.0f} MB")
    assert peak.rss - base < 150 * MB, (peak.rss - base) / MB
    assert peak.slowest < 1.0, peak.slowest


def test_a_float32_upload_is_stored_a_slice_at_a_time_and_a_deflate_bomb_is_refused(server):
    bomb = npz(x=np.zeros((1024, 256, 256), np.float32))  # 256 MB of zeros in 0.26 MB
    assert len(bomb) < 300_000
    r = upload(server, bomb)
    assert r.status_code == 422 and r.json()["error"]["message"] == ("x.npz/x.npy: compression ratio over 200:1 "
                                                                     "(a zip bomb?)")
    data = npz(x=digits(1000, 256, np.float32))  # 262 MB of float32 under 200:1; 65.5 MB stored as uint8
    base = warm(server)
    with Peak(server) as peak:
        answers = at_once(lambda: upload(server, data), 4)
    for r in answers:
        assert r.status_code == 201, r.text
        assert r.json()["n"] == 1000 and r.json()["shape"] == [256, 256]
    print(f"float32 upload x4: +{(peak.rss - base) / MB:.0f} MB")
    assert peak.rss - base < 150 * MB, (peak.rss - base) / MB  # 4 × 770 MB before
    assert peak.slowest < 1.0, peak.slowest
