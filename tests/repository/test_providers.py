"""Execution providers: what is configured and missing here falls back to the CPU, says so once, and
GET /v1/models/{name} tells which provider each network runs on."""
from __future__ import annotations

import logging

import onnxruntime as ort
import pytest

from service.repository.sessions import BATCHING, CPU, available, batching

GPU = ["CUDAExecutionProvider", "TensorrtExecutionProvider"]
pytestmark = pytest.mark.skipif(any(p in ort.get_available_providers() for p in GPU),
                                reason="this onnxruntime has a GPU provider: nothing falls back")


def test_a_missing_provider_falls_back_to_the_cpu():
    assert available(["CUDAExecutionProvider", CPU]) == (CPU,)
    assert available(["CUDAExecutionProvider"]) == (CPU,)  # the CPU is always the last resort
    assert batching(["TensorrtExecutionProvider", "CUDAExecutionProvider"]) == BATCHING[CPU]


def test_asking_for_cuda_serves_on_the_cpu_says_so_and_logs_once(make_app, caplog):
    caplog.set_level(logging.WARNING, logger="service.repository.sessions")
    with make_app(ort_providers=",".join([*GPU, CPU]), ort_threads=1) as client:
        for name in ("quadratic", "mnist-dcgan"):  # several networks, several models: still one warning each
            body = client.get(f"/v1/models/{name}").json()
            loaded = [v for v in body["version_details"] if v["loaded"]]
            assert loaded, body
            for version in loaded:
                assert {t["provider"] for t in version["threads"].values()} == {CPU}
        assert client.app.state.batcher.max_rows == BATCHING[CPU][0]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    for provider in GPU:
        assert sum(provider in w and "not available" in w for w in warnings) == 1, warnings
