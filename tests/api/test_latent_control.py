"""Latent control through real HTTP: truncation, explicit latents and walks on /samples, samples.png, /datasets."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from service import sampling
from service.repository import Card


def post(api, name, **body):
    return api.post(f"/v1/models/{name}/samples", json=body)


def npy(response) -> np.ndarray:
    assert response.status_code == 200, response.text
    return np.load(io.BytesIO(response.content))


def send(api, path, body):
    """A body json.dumps writes as Python does (NaN included), which httpx's json= refuses to."""
    return api.post(path, content=json.dumps(body), headers={"content-type": "application/json"})


@pytest.fixture(scope="module")
def cards(serving_repository):
    return {p.parent.parent.name: Card.load(p) for p in serving_repository.glob("*/1/card.json")}


def test_truncation_is_reproducible_and_one_is_off(serving_api):
    body = {"n": 6, "seed": 4, "format": "npy"}
    truncated = post(serving_api, "mnist-dcgan", **body, truncation=0.5).content
    assert post(serving_api, "mnist-dcgan", **body, truncation=0.5).content == truncated
    assert post(serving_api, "mnist-dcgan", **body, truncation=1).content == post(serving_api, "mnist-dcgan", **body).content
    assert truncated != post(serving_api, "mnist-dcgan", **body).content
    shown = post(serving_api, "quadratic", n=2, seed=4, truncation=0.5).json()
    assert shown["truncation"] == 0.5


def test_truncation_follows_the_seed_and_index_rule_across_routes(serving_api):
    row = npy(post(serving_api, "mnist-cgan", n=12, seed=9, truncation=0.6, format="npy"))
    dataset = np.load(io.BytesIO(serving_api.post("/v1/datasets", json={
        "model": "mnist-cgan", "n": 300, "seed": 9, "truncation": 0.6}).content))
    np.testing.assert_array_equal(dataset["x"][:12], row)
    png = serving_api.get("/v1/models/mnist-cgan/samples.png", params={"n": 12, "seed": 9, "truncation": 0.6})
    same = post(serving_api, "mnist-cgan", n=12, seed=9, truncation=0.6, format="png")
    assert png.content == same.content


@pytest.mark.parametrize("name", ["quadratic", "curves-cgan", "mnist-dcgan", "mnist-cgan"])
@pytest.mark.parametrize("method", ["slerp", "lerp", None])
def test_the_ends_of_a_walk_are_the_two_seeds_samples_byte_for_byte(serving_api, name, method):
    walk = {"from": 21, "to": 34, "steps": 6, **({"method": method} if method else {})}
    path = npy(post(serving_api, name, walk=walk, truncation=0.8, format="npy"))
    assert len(path) == 6
    start = npy(post(serving_api, name, n=1, seed=21, truncation=0.8, format="npy"))
    end = npy(post(serving_api, name, n=1, seed=34, truncation=0.8, format="npy"))
    assert path[0].tobytes() == start[0].tobytes() and path[-1].tobytes() == end[0].tobytes()
    again = npy(post(serving_api, name, walk=walk, truncation=0.8, format="npy"))
    np.testing.assert_array_equal(again, path)


def test_a_walk_of_a_conditional_model_holds_its_label_unless_told(serving_api):
    held = post(serving_api, "mnist-cgan", walk={"from": 1, "to": 2, "steps": 4}).json()
    assert held["labels"] == ["0"] * 4 and held["seed"] == 1
    walked = post(serving_api, "mnist-cgan", walk={"from": 1, "to": 2, "steps": 4}, labels=["3", "3", "8", "8"]).json()
    assert walked["labels"] == ["3", "3", "8", "8"]
    counted = post(serving_api, "mnist-cgan", walk={"from": 1, "to": 2, "steps": 4}, labels={"7": 4}).json()
    assert counted["labels"] == ["7"] * 4


@pytest.mark.parametrize("fmt", ["gif", "webp"])
def test_a_walk_animates_one_frame_per_step(serving_api, fmt):
    body = {"walk": {"from": 5, "to": 6, "steps": 7}, "format": fmt}
    response = post(serving_api, "mnist-dcgan", **body)
    assert response.status_code == 200 and response.headers["content-type"] == f"image/{fmt}"
    image = Image.open(io.BytesIO(response.content))
    assert image.format == fmt.upper() and image.n_frames == 7 and image.size == (28, 28)
    assert post(serving_api, "mnist-dcgan", **body).content == response.content
    first = npy(post(serving_api, "mnist-dcgan", n=1, seed=5, format="npy"))[0]
    image.seek(0)
    np.testing.assert_array_equal(np.asarray(image.convert("L")), first)  # lossless frames


def test_a_walk_as_png_is_a_row_by_get_and_post(serving_api):
    row = serving_api.get("/v1/models/mnist-cgan/samples.png", params={"walk": "5..6", "steps": 9, "method": "lerp"})
    assert row.status_code == 200 and Image.open(io.BytesIO(row.content)).size == (9 * 28, 28)
    same = post(serving_api, "mnist-cgan", walk={"from": 5, "to": 6, "steps": 9, "method": "lerp"}, format="png")
    assert same.content == row.content
    assert Image.open(io.BytesIO(serving_api.get("/v1/models/mnist-cgan/samples.png",
                                                 params={"walk": "5..6"}).content)).size == (8 * 28, 28)


def test_a_walk_streams_as_a_dataset_with_the_same_samples(serving_api):
    walk = {"from": 3, "to": 4, "steps": 300}
    dataset = np.load(io.BytesIO(serving_api.post("/v1/datasets", json={"model": "mnist-dcgan", "walk": walk}).content))
    np.testing.assert_array_equal(dataset["x"], npy(post(serving_api, "mnist-dcgan", walk=walk, format="npy")))


def test_explicit_latents_reproduce_a_seeds_samples(serving_api, cards):
    card = cards["mnist-cgan"]
    z = sampling.latents(8, 0, 5, card.latent.dim, card.latent.distribution)
    given = post(serving_api, "mnist-cgan", latents=z.tolist(), format="npy")
    assert "x-seed" not in given.headers
    np.testing.assert_array_equal(npy(given), npy(post(serving_api, "mnist-cgan", n=5, seed=8, format="npy")))
    body = post(serving_api, "mnist-cgan", latents=z.tolist(), truncation=0.5).json()
    assert body["seed"] is None and len(body["samples"]) == 5 and body["truncation"] == 0.5
    dataset = np.load(io.BytesIO(serving_api.post("/v1/datasets", json={"model": "mnist-cgan", "latents": z.tolist()}).content))
    np.testing.assert_array_equal(dataset["x"], npy(given))


@pytest.mark.parametrize("psi", [0.5, 1.5])
def test_psi_scales_the_seeds_latents_both_ways(serving_api, cards, psi):
    """ψ below 1 is truncation, above 1 the expansion trick: either way sample i is G(ψ·z_i), in a dataset too."""
    card = cards["mnist-cgan"]
    z = sampling.latents(8, 0, 5, card.latent.dim, card.latent.distribution)
    scaled = npy(post(serving_api, "mnist-cgan", n=5, seed=8, truncation=psi, format="npy"))
    given = npy(post(serving_api, "mnist-cgan", latents=(psi * z).tolist(), format="npy"))
    np.testing.assert_array_equal(scaled, given)
    assert not np.array_equal(scaled, npy(post(serving_api, "mnist-cgan", n=5, seed=8, format="npy")))
    dataset = np.load(io.BytesIO(serving_api.post("/v1/datasets", json={
        "model": "mnist-cgan", "n": 5, "seed": 8, "truncation": psi, "mode": "filtered"}).content))
    assert dataset["x"].shape == (5, 28, 28) and "acceptance_rate" in dataset.files


@pytest.mark.parametrize("body, field, words", [
    ({"truncation": 0}, "truncation", "greater than 0"),
    ({"truncation": 2.5}, "truncation", "less than or equal to 2"),
    ({"truncation": "high"}, "truncation", "number"),
    ({"latents": [[0.0] * 3]}, "latents", "8 numbers"),
    ({"latents": [[0.0] * 8, [0.0] * 9]}, "latents", "row 1 has 9"),
    ({"latents": [[float("nan")] + [0.0] * 7]}, "latents.0.0", "finite"),
    ({"latents": [[float("inf")] * 8]}, "latents.0.0", "finite"),
    ({"latents": [[1e39] * 8]}, "latents", "not finite as float32"),
    ({"latents": [[0.0] * 8] * 1025}, "latents", "1024 rows (max_n)"),
    ({"latents": []}, "latents", "between 1 and 1024"),
    ({"latents": [[0.0] * 8], "n": 2}, "n", "leave n out"),
    ({"latents": [[0.0] * 8], "seed": 2}, "seed", "leave seed out"),
    ({"latents": [[0.0] * 8], "mode": "nice"}, "mode", "plain"),
    ({"latents": [[0.0] * 8], "walk": {"from": 1, "to": 2, "steps": 3}}, "latents", "not both"),
    ({"walk": {"from": 1, "to": 2, "steps": 1}}, "walk.steps", "greater than or equal to 2"),
    ({"walk": {"from": 1, "to": 2, "steps": 1025}}, "walk.steps", "1024 steps (max_n)"),
    ({"walk": {"from": -1, "to": 2, "steps": 3}}, "walk.from", "greater than or equal to 0"),
    ({"walk": {"from": 1, "steps": 3}}, "walk.to", "required"),
    ({"walk": {"from": 1, "to": 2, "steps": 3, "method": "cubic"}}, "walk.method", "slerp"),
    ({"walk": {"from": 1, "to": 2, "steps": 3, "speed": 2}}, "walk.speed", "not permitted"),
    ({"walk": {"from": 1, "to": 2, "steps": 3}, "mode": "rejection"}, "mode", "plain"),
])
def test_bad_latent_control_is_422_naming_the_field(serving_api, body, field, words):
    response = send(serving_api, "/v1/models/mnist-dcgan/samples", body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["field"] == field and words in error["message"], error


@pytest.mark.parametrize("params, field", [
    ({"truncation": 0}, "truncation"), ({"truncation": 2.01}, "truncation"), ({"walk": "1-2"}, "walk"),
    ({"steps": 4}, "steps"),
    ({"walk": "1..2", "steps": 1}, "steps"), ({"walk": "1..2", "seed": 3}, "seed"),
])
def test_bad_latent_control_by_get_is_422_naming_the_field(serving_api, params, field):
    response = serving_api.get("/v1/models/mnist-dcgan/samples.png", params=params)
    assert response.status_code == 422 and response.json()["error"]["field"] == field


def test_bad_latent_control_in_a_dataset_is_422_naming_the_field(serving_api):
    wide = send(serving_api, "/v1/datasets", {"model": "mnist-dcgan", "latents": [[0.0] * 9]})
    assert wide.status_code == 422 and wide.json()["error"]["field"] == "latents"
    nice = send(serving_api, "/v1/datasets", {"model": "mnist-dcgan", "walk": {"from": 1, "to": 2, "steps": 3},
                                             "mode": "nice"})
    assert nice.status_code == 422 and nice.json()["error"]["field"] == "mode"
    assert send(serving_api, "/v1/datasets", {"model": "mnist-dcgan", "n": 4,
                                              "truncation": 2.5}).json()["error"]["field"] == "truncation"


def test_animations_are_for_images(serving_api):
    response = post(serving_api, "quadratic", walk={"from": 1, "to": 2, "steps": 3}, format="gif")
    assert response.status_code == 422 and response.json()["error"]["field"] == "format"
