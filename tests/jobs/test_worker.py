"""Training jobs end to end: the API, a real Redis, a real Celery worker process, the repository."""
from __future__ import annotations

import time

import pytest

from tests.utils import wait_job as wait_state
from tests.utils import wait_until

pytestmark = pytest.mark.system


def test_the_readme_job_passes_its_gate_and_is_served_as_a_new_model_without_restart(api, worker, server):
    started = time.monotonic()
    response = api.post("/v1/jobs", json={"family": "quadratic"})  # the README's example: the family's defaults
    assert response.status_code == 202
    assert time.monotonic() - started < 2, "submission must answer at once"
    job = response.json()
    assert job["state"] == "queued" and job["links"]["self"].endswith(job["id"])
    assert job["model"] == f"quadratic-{job['id'][:8]}"  # a name of its own, never over the shipped model

    done = wait_state(api, job["id"], ("succeeded", "failed", "cancelled"), timeout=300)
    assert done["state"] == "succeeded", done["error"]
    assert {"loss_d", "loss_g", "acc_real", "acc_fake"} <= set(done["latest"])
    result = done["result"]
    assert result["gate"]["outcome"] == "passed" and result["promoted"], result["message"]
    assert (server.writable / job["model"] / "1" / "generator.onnx").exists()

    wait_until(lambda: api.get(f"/v1/models/{job['model']}").status_code == 200, 10, "the rescan")
    model = api.get(f"/v1/models/{job['model']}").json()
    assert model["default"] == 1 and model["aliases"] == {"default": 1}
    lineage = model["card"]["lineage"]
    assert lineage["job"] == job["id"] and lineage["data"] == "default" and lineage["onnx_opset"] == 17
    sampled = api.post(f"/v1/models/{job['model']}/samples", json={"n": 4, "seed": 1})
    assert sampled.json()["version"] == 1 and sampled.headers["x-model-version"] == "1"


def test_a_job_that_fails_its_gate_is_published_but_never_becomes_the_default(api, worker, server):
    body = {"n": 16, "seed": 3, "format": "npy"}
    before = api.post("/v1/models/quadratic/samples", json=body)
    default = api.get("/v1/models/quadratic").json()["default"]
    job = api.post("/v1/jobs", json={"family": "quadratic", "steps": 10, "model": "quadratic", "promote": True}).json()
    done = wait_state(api, job["id"], ("succeeded", "failed", "cancelled"))
    assert done["state"] == "succeeded", done["error"]
    assert done["result"]["gate"]["outcome"] == "failed" and not done["result"]["promoted"]
    assert "default is unchanged" in done["result"]["message"]
    version = done["result"]["version"]
    wait_until(lambda: version in api.get("/v1/models/quadratic").json()["versions"], 10, "the rescan")
    model = api.get("/v1/models/quadratic").json()
    assert model["default"] == default and model["latest"] == version
    after = api.post("/v1/models/quadratic/samples", json=body)
    assert after.headers["x-model-version"] == str(default) and after.content == before.content
    explicit = api.post("/v1/models/quadratic/samples", json={**body, "version": version})
    assert explicit.status_code == 200 and explicit.headers["x-model-version"] == str(version)


def test_cancelled_running_job_stops_and_publishes_nothing(api, worker, server):
    versions = api.get("/v1/models/quadratic").json()["versions"]
    job = api.post("/v1/jobs", json={"family": "quadratic", "steps": 200_000, "model": "quadratic"}).json()
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
    result = events[-1][1]["result"]  # the last event says what the job did to the default
    assert result["version"] == 1 and result["gate"]["outcome"] in ("passed", "failed") and result["message"]


def test_job_trains_on_uploaded_data(api, worker):
    import io

    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(40, 28, 28), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, x=x, y=np.arange(40) % 10)
    upload = api.post("/v1/data", files={"file": ("digits.npz", buffer.getvalue())}).json()
    params = {"g_channels": 8, "d_channels": 4, "d_refine": 0}
    job = api.post("/v1/jobs", json={"family": "mnist-cgan", "data": upload["id"], "steps": 2, "params": params,
                                     "model": "uploaded-digits"}).json()
    done = wait_state(api, job["id"], ("succeeded", "failed"), timeout=180)
    assert done["state"] == "succeeded", done["error"]
    assert done["result"]["model"] == "uploaded-digits"
    assert done["result"]["gate"]["outcome"] == "failed"  # two steps on noise: published, never the default
    wait_until(lambda: api.get("/v1/models/uploaded-digits").status_code == 200, 10, "the rescan")
    model = api.get("/v1/models/uploaded-digits").json()
    assert model["default"] is None and model["versions"] == [1]
    lineage = model["version_details"][0]["lineage"]
    assert lineage["data"] == upload["id"] and len(lineage["data_sha256"]) == 64
    assert api.post("/v1/models/uploaded-digits/samples", json={"n": 2}).status_code == 404
    sampled = api.post("/v1/models/uploaded-digits/samples", json={"n": 2, "labels": ["3", "4"], "version": 1})
    assert sampled.status_code == 200 and sampled.json()["labels"] == ["3", "4"]


def test_a_translation_job_trains_on_two_named_sources_and_is_served(api, worker, server):
    """digits-cyclegan with {"a": "mnist", "b": <upload id>}: trained by the worker, evaluated, translatable."""
    import io

    import numpy as np

    from tests.utils import TINY
    from training.data import uci_split

    x = np.rint((uci_split()["train_x"][:200, 0] + 1) * 127.5).astype(np.uint8)  # 28×28, fitted as MNIST was
    buffer = io.BytesIO()
    np.savez(buffer, x=x)
    upload = api.post("/v1/data", files={"file": ("uci.npz", buffer.getvalue())})
    assert upload.status_code == 201, upload.text
    bad = api.post("/v1/jobs", json={"family": "digits-cyclegan", "data": "mnist"})
    assert bad.status_code == 422 and bad.json()["error"]["message"].startswith("data: family digits-cyclegan")
    data = {"a": "mnist", "b": upload.json()["id"]}
    job = api.post("/v1/jobs", json={"family": "digits-cyclegan", "steps": 4, "data": data,
                                     "params": TINY["digits-cyclegan"]}).json()
    assert job["config"]["data"] == data
    done = wait_state(api, job["id"], ("succeeded", "failed", "cancelled"), timeout=300)
    assert done["state"] == "succeeded", done["error"]
    assert {"loss_cycle", "loss_identity"} <= set(done["latest"]) and done["snapshots"]
    metrics = done["result"]["metrics"]
    assert 0 <= metrics["b_to_a"]["label_accuracy"] <= 1 and metrics["a_to_b"]["cycle_error"] >= 0
    wait_until(lambda: api.get(f"/v1/models/{job['model']}").status_code == 200, 10, "the rescan")
    card = api.get(f"/v1/models/{job['model']}", params={"version": 1}).json()["card"]
    assert card["kind"] == "translation" and card["lineage"]["data"] == data
    assert (card["domains"]["a"]["name"], card["domains"]["b"]["name"]) == ("mnist", "b")
    translated = api.post(f"/v1/models/{job['model']}/translate",
                          json={"images": [], "direction": "a_to_b", "version": 1})
    assert translated.status_code == 422  # no images
    import base64

    from PIL import Image

    png = io.BytesIO()
    Image.fromarray(x[0]).save(png, format="PNG")
    translated = api.post(f"/v1/models/{job['model']}/translate", json={
        "images": [base64.b64encode(png.getvalue()).decode()], "direction": "b_to_a", "version": 1})
    assert translated.status_code == 200, translated.text
    assert translated.json()["to"] == "mnist" and len(translated.json()["scores"]) == 1
