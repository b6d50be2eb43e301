"""Jobs on a user's own data through the API and a real worker: uploads that are not digits are measured against
their own held-out split (never by a digit classifier), gated on it, published and served; RGB stays RGB."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from tests.datasets import patterns, shapes
from tests.utils import wait_job, wait_until

pytestmark = pytest.mark.system
DIGIT_KEYS = {"classes_covered", "class_shares", "mean_confidence"}


def upload(api, name: str, x: np.ndarray, y: np.ndarray | None) -> str:
    buffer = io.BytesIO()
    np.savez(buffer, **({"x": x} if y is None else {"x": x, "y": y}))
    response = api.post("/v1/data", files={"file": (name, buffer.getvalue())})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def details(api, model: str) -> dict:
    """The card of the model's first version (not its default: a version that failed its gate is not one)."""
    wait_until(lambda: api.get(f"/v1/models/{model}").status_code == 200, 10, "the rescan")
    return api.get(f"/v1/models/{model}", params={"version": 1}).json()["card"]


def test_grey_shapes_on_a_digit_family_are_measured_and_gated_on_their_own_split(api, worker):
    data = upload(api, "shapes.npz", *shapes(200))
    params = {"g_channels": 8, "d_channels": 4, "batch_size": 16, "codes": 0, "d_refine": 0}
    job = api.post("/v1/jobs", json={"family": "mnist-dcgan", "data": data, "steps": 20, "params": params,
                                     "model": "my-shapes"}).json()
    done = wait_job(api, job["id"], ("succeeded", "failed"), timeout=300)
    assert done["state"] == "succeeded", done["error"]
    card = details(api, "my-shapes")
    against = card["measured_against"]
    assert against["data"] == data and against["data_sha256"] == card["lineage"]["data_sha256"]
    assert against["split"]["held_out"] == 40 and card["lineage"]["split"] == against["split"]
    assert against["classifier"]["classes"] == 4 and against["evaluators"] is None  # its own labels' classifier
    assert not DIGIT_KEYS & set(card["metrics"]["plain"]) and "swd_ratio" in card["metrics"]["plain"]
    bars = {b["metric"] for b in card["gate"]["bars"]}  # label-free, and its own labels' classifier's Fréchet ratio
    assert bars == {"plain.frechet_random_ratio", "plain.swd_ratio", "plain.frechet_ratio"}
    assert done["result"]["gate"]["outcome"] == card["gate"]["outcome"]


def test_an_rgb_upload_trains_a_conditional_model_that_serves_rgb(api, worker):
    data = upload(api, "patterns.npz", *patterns(180))
    params = {"g_channels": 8, "d_channels": 4, "batch_size": 16, "latent_dim": 8}
    job = api.post("/v1/jobs", json={"family": "image-cgan", "data": data, "steps": 20, "params": params,
                                     "model": "my-patterns"}).json()
    done = wait_job(api, job["id"], ("succeeded", "failed"), timeout=300)
    assert done["state"] == "succeeded", done["error"]
    card = details(api, "my-patterns")
    assert card["sample_shape"] == [3, 32, 32] and card["labels"] == [str(i) for i in range(6)]
    assert "plain.label_accuracy_ratio" in {b["metric"] for b in card["gate"]["bars"]}
    png = api.get("/v1/models/my-patterns/samples.png", params={"n": 4, "version": card["version"]})
    assert png.status_code == 200 and Image.open(io.BytesIO(png.content)).mode == "RGB"
    snapshot = done["snapshots"][-1]["file"]
    picture = api.get(f"/v1/jobs/{job['id']}/snapshots/{snapshot}")
    assert picture.status_code == 200 and Image.open(io.BytesIO(picture.content)).mode == "RGB"
