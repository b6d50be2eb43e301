"""Training jobs end to end: the API, a real Redis, a real Celery worker process, the repository."""
from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.slow


def wait_state(api, job_id: str, states: tuple[str, ...], timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = api.get(f"/v1/jobs/{job_id}").json()
        if job["state"] in states:
            return job
        time.sleep(0.2)
    raise TimeoutError(f"job {job_id} still {job['state']} after {timeout}s")


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

    deadline = time.monotonic() + 10  # the service rescans every 0.2 s in the tests
    while api.get("/v1/models/quadratic").json()["latest"] != version and time.monotonic() < deadline:
        time.sleep(0.1)
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
