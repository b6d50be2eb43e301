"""A keyed server with small limits, and raw-socket helpers for what an HTTP client would not send."""
from __future__ import annotations

import socket

import pytest

from tests.utils import serve

KEY = "hostile-key-8c1f"
AUTH = {"Authorization": f"Bearer {KEY}"}
LIMITS = {"api_keys": KEY, "max_body_bytes": 20_000, "max_upload_bytes": 200_000, "body_seconds": 1.5,
          "max_upload_pixels": 2_000_000, "max_upload_inflated_bytes": 4_000_000, "max_queued_jobs": 2,
          "max_storage_bytes": 20_000,
          "rate_per_second": 1000, "rate_burst": 1000, "reconcile_seconds": 3600,
          "redis_url": "redis://127.0.0.1:1/0"}  # no broker: jobs are refused with 503, never run


@pytest.fixture(scope="module")
def hostile(serving_repository, tmp_path_factory):
    """A real server of the tiny serving models, keyed, with small limits."""
    srv = serve(serving_repository, tmp_path_factory.mktemp("hostile"), **LIMITS)
    yield srv
    srv.stop()


@pytest.fixture
def client(hostile):
    with hostile.client() as api:
        yield api


def raw(port: int, head: str, body: bytes = b"", timeout: float = 5.0) -> tuple[int, bytes]:
    """Send a request head (and part of a body) on a socket; the status and what came back in `timeout`."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        data = b""
        try:
            while chunk := s.recv(65536):
                data += chunk
        except socket.timeout:
            pass
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0
    return status, data
