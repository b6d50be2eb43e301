"""Training jobs end to end: the API, a real Redis, a real Celery worker process, the repository."""
from __future__ import annotations

import time

import pytest

from tests.utils import wait_job as wait_state
from tests.utils import wait_until

pytestmark = pytest.mark.slow


def test_job_trains_publishes_and_is_served_without_restart(api, worker, server):
    before = api.get("/v1/models/quadratic").json()["latest"]
    started = time.monotonic()
    response = api.post("/v1/jobs", json={"family": "quadratic", "steps": 300, "params": {"g_hidden": 8}})
    assert response.status_code == 202
    assert time.monotonic() - started < 2, "submission must answer at once"
    job = response.json()
    assert job["state"] == "queued" and job["links"]["self"].endswith(job["id"])

    done = wait_state(api, job["id"], ("succeeded", "failed", "cancelled"))
    assert done["state"] == "succeeded", done["error"]
    assert done["progress"]["step"] == 300
    assert {"loss_d", "loss_g", "acc_real", "acc_fake"} <= set(done["latest"])
    version = done["result"]["version"]
    assert version == before + 1
    assert (server.writable / "quadratic" / str(version) / "generator.onnx").exists()

    wait_until(lambda: api.get("/v1/models/quadratic").json()["latest"] == version, 10, "the rescan")
    sampled = api.post("/v1/models/quadratic/samples", json={"n": 4, "seed": 1}).json()
    assert sampled["version"] == version


def test_cancelled_running_job_stops_and_publishes_nothing(api, worker, server):
    versions = api.get("/v1/models/quadratic").json()["versions"]
    job = api.post("/v1/jobs", json={"family": "quadratic", "steps": 200_000}).json()
    wait_state(api, job["id"], ("running",), timeout=60)
    asked = time.monotonic()
    assert api.delete(f"/v1/jobs/{job['id']}").status_code == 200
    done = wait_state(api, job["id"], ("cancelled", "failed", "succeeded"), timeout=30)
    assert done["state"] == "cancelled"
    assert time.monotonic() - asked < 5
    assert api.get("/v1/models/quadratic").json()["versions"] == versions


def read_events(api, job_id: str, timeout: float = 120) -> list[tuple[str, dict]]:
    """Server-sent events of a job, read by a real streaming HTTP client until the stream ends."""
    import json

    events, name = [], None
    with api.stream("GET", f"/v1/jobs/{job_id}/events", timeout=timeout) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.append((name, json.loads(line.removeprefix("data: "))))
    return events


def test_events_stream_progress_and_states_until_the_job_ends(api, worker):
    job = api.post("/v1/jobs", json={"family": "quadratic", "steps": 4000, "params": {"g_hidden": 8}}).json()
    events = read_events(api, job["id"])
    states = [data["state"] for name, data in events if name == "state"]
    assert states[0] in ("queued", "running") and states[-1] == "succeeded"
    steps = [data["progress"]["step"] for name, data in events if name == "progress"]
    assert len(steps) >= 2 and steps == sorted(steps) and steps[-1] == 4000
    assert events[-1][1]["result"]["version"] >= 2


def test_job_trains_on_uploaded_data(api, worker):
    import io

    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(40, 28, 28), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, x=x, y=np.arange(40) % 10)
    upload = api.post("/v1/data", files={"file": ("digits.npz", buffer.getvalue())}).json()
    job = api.post("/v1/jobs", json={"family": "mnist-cgan", "data": upload["id"], "steps": 2,
                                     "model": "uploaded-digits"}).json()
    done = wait_state(api, job["id"], ("succeeded", "failed"), timeout=180)
    assert done["state"] == "succeeded", done["error"]
    assert done["result"]["model"] == "uploaded-digits"
    wait_until(lambda: api.get("/v1/models/uploaded-digits").status_code == 200, 10, "the rescan")
    sampled = api.post("/v1/models/uploaded-digits/samples", json={"n": 2, "labels": ["3", "4"]})
    assert sampled.status_code == 200 and sampled.json()["labels"] == ["3", "4"]
