"""Prometheus metrics of the sampling path (served at /metrics by service/api/health.py)."""
from __future__ import annotations

import functools
import time
from typing import Callable

from prometheus_client import Counter, Histogram

_LATENCY = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

REQUESTS = Counter("ganserve_sample_requests_total", "Sampling requests answered, by status",
                   ["model", "mode", "format", "status"])
ERRORS = Counter("ganserve_sample_errors_total", "Sampling requests that failed, by status",
                 ["model", "mode", "status"])
LATENCY = Histogram("ganserve_sample_latency_seconds", "Sampling request latency, sampling and encoding",
                    ["model", "mode"], buckets=_LATENCY)
SAMPLES = Counter("ganserve_samples_total", "Samples returned", ["model", "mode"])
CANDIDATES = Counter("ganserve_candidates_scored_total", "Candidates scored by the discriminator",
                     ["model", "mode"])
ACCEPTANCE = Histogram("ganserve_rejection_acceptance_rate", "Acceptance rate of rejection sampling requests",
                       ["model"], buckets=(0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0))
BATCH_ROWS = Histogram("ganserve_batch_rows", "Rows per onnxruntime call", ["model", "network"],
                       buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048))
QUEUE_WAIT = Histogram("ganserve_batch_queue_wait_seconds", "Time a request's rows waited for their batch",
                       ["model"], buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1))
REJECTED = Counter("ganserve_overloaded_total", "Requests refused with 503 because the model's queue was full",
                   ["model"])


@functools.lru_cache(maxsize=4096)
def child(metric, *values: str):
    """A metric's child for label values, looked up once (prometheus_client's labels() locks and checks each
    call: ~3 µs, five times a request)."""
    return metric.labels(*values)


class Observed:
    """Counts one sampling request: status, latency, samples, candidates, acceptance (a `with` block)."""

    def __init__(self, mode: str, fmt: str, status_of: Callable[[BaseException], int]):
        self.mode, self.format, self.status_of = mode, fmt, status_of
        self.model = None  # set once the model is known: an unknown name must not become a label
        self.result = None  # the Samples, once sampled

    def __enter__(self) -> "Observed":
        self.started = time.perf_counter()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        model = self.model.name if self.model is not None else "(unknown)"
        status = 200 if exc is None else self.status_of(exc)
        child(REQUESTS, model, self.mode, str(self.format), str(status)).inc()
        child(LATENCY, model, self.mode).observe(time.perf_counter() - self.started)
        if exc is not None:
            child(ERRORS, model, self.mode, str(status)).inc()
        elif self.result is not None:
            child(SAMPLES, model, self.mode).inc(len(self.result.values))
            if self.result.scores is not None:  # candidates were scored: a ranked mode
                child(CANDIDATES, model, self.mode).inc(self.result.candidates)
            if self.result.acceptance is not None:
                child(ACCEPTANCE, model).observe(self.result.acceptance)
