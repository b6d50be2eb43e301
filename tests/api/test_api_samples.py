"""POST /v1/models/{name}/samples and GET samples.png through real HTTP: modes, formats, labels, limits."""
from __future__ import annotations

import concurrent.futures
import io
import json
import zipfile

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.utils import serve

MODELS = ["quadratic", "curves-cgan", "mnist-dcgan", "mnist-cgan"]
MODES = ["plain", "nice", "rejection"]
FORMATS = ["json", "png", "npy", "npz", "zip"]


def post(api, name, **body) -> httpx.Response:
    return api.post(f"/v1/models/{name}/samples", json=body)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", MODELS)
def test_every_mode_and_format_works_on_every_kind(serving_api, name, mode, fmt):
    r = post(serving_api, name, n=4, seed=11, mode=mode, oversample=40, format=fmt)
    assert r.status_code == 200, r.text
    assert r.headers["x-seed"] == "11" and r.headers["x-model"] == name
    image = name.startswith("mnist")
    conditional = name in ("curves-cgan", "mnist-cgan")
    if fmt == "json":
        body = r.json()
        assert body["mode"] == mode and len(body["samples"]) == 4
        assert ("labels" in body) == conditional and ("scores" in body) == (mode != "plain")
        assert ("acceptance_rate" in body) == (mode == "rejection")
    elif fmt == "png":
        assert Image.open(io.BytesIO(r.content)).format == "PNG"
    elif fmt == "npy":
        array = np.load(io.BytesIO(r.content))
        assert array.shape[0] == 4 and array.dtype == (np.uint8 if image else np.float32)
    elif fmt == "npz":
        archive = np.load(io.BytesIO(r.content))
        assert archive["x"].shape[0] == 4 and ("samples" not in archive) and ("labels" not in archive)
        assert ("y" in archive) == conditional and ("scores" in archive) == (mode != "plain")
    else:
        names = zipfile.ZipFile(io.BytesIO(r.content)).namelist()
        assert "index.csv" in names and (sum(n.endswith(".png") for n in names) == 4 if image else "samples.csv" in names)


@pytest.mark.parametrize("mode", MODES)
def test_every_response_says_which_ranking_chose_its_samples(serving_api, mode):
    r = post(serving_api, "mnist-cgan", n=4, seed=1, mode=mode, oversample=40)
    ranking = r.headers["x-ranking"]
    assert ranking == "none" if mode == "plain" else "D logit" in ranking
    if mode == "nice":  # a tiny model's card has no ranking: the request's oversample, each label its share
        assert "best 1 of 40" in ranking and "each label keeping its share" in ranking and "request" in ranking


def test_nice_without_oversample_takes_the_classic_20_when_the_card_names_none(serving_api):
    r = post(serving_api, "mnist-cgan", n=3, seed=1, mode="nice")
    assert r.headers["x-candidates"] == "60" and "best 1 of 20" in r.headers["x-ranking"]


def test_same_request_returns_same_bytes_however_batched(serving_api, serving_server):
    bodies = [{"n": n, "seed": seed, "mode": mode, "format": "npy", "oversample": 6}
              for seed in range(6) for n in (1, 3) for mode in ("plain", "nice")]
    alone = [post(serving_api, "mnist-dcgan", **b).content for b in bodies]

    def request(body):
        with httpx.Client(base_url=serving_server.url, timeout=30) as client:
            return post(client, "mnist-dcgan", **body).content

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        together = list(pool.map(request, bodies * 2))
    assert together == alone * 2


def test_a_request_without_seed_gets_one_chosen_and_returned(serving_api):
    r = post(serving_api, "quadratic", n=3)
    seed = int(r.headers["x-seed"])
    assert r.json()["seed"] == seed
    assert post(serving_api, "quadratic", n=3, seed=seed).content == r.content


def test_labels_as_counts_with_names_from_the_card(serving_api):
    body = post(serving_api, "curves-cgan", labels={"upper": 2, "lower": 1}, seed=1, mode="nice").json()
    assert body["labels"] == ["upper", "upper", "lower"] and len(body["samples"]) == 3
    digits = post(serving_api, "mnist-cgan", labels=[7, "3", 7], seed=1).json()
    assert digits["labels"] == ["7", "3", "7"]


@pytest.mark.parametrize("mode", MODES)
def test_sample_i_carries_label_i_in_every_mode(serving_api, mode):
    labels = ["3", "1", "3", "9", "1"]
    r = post(serving_api, "mnist-cgan", labels=labels, seed=2, mode=mode, oversample=40, format="npz")
    names = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]
    assert [names[i] for i in np.load(io.BytesIO(r.content))["y"]] == labels


def test_unknown_label_is_422_listing_the_valid_ones(serving_api):
    r = post(serving_api, "curves-cgan", labels=["middle"])
    assert r.status_code == 422
    assert r.json()["error"] == {"status": 422, "field": "labels",
                                 "message": "labels: unknown label 'middle'; known: lower, upper"}


def test_labels_on_an_unconditional_model_is_422(serving_api):
    r = post(serving_api, "mnist-dcgan", labels=["1"])
    assert r.status_code == 422 and "unconditional" in r.json()["error"]["message"]


@pytest.mark.parametrize("body, field, limit", [
    ({"n": 1025}, "n", "1024"),
    ({"n": 2, "mode": "nice", "oversample": 51}, "oversample", "50"),
    ({"n": 1000, "mode": "nice", "oversample": 20}, "oversample", "16384"),
    ({"n": 4, "format": "png", "grid": [100, 100]}, "grid", "4096"),
    ({"n": 4, "format": "png", "grid": [1, 2]}, "grid", "n=4"),
    ({"n": 4, "grid": [2, 2]}, "grid", "png"),
    ({"labels": {"upper": 2000}}, "labels", "1024"),
    ({"labels": ["upper"] * 1025}, "labels", "1024"),
    ({"labels": {"upper": 0}}, "labels", "at least 1"),
    ({"labels": []}, "labels", "at least one"),
    ({"labels": [1.5]}, "labels", "one label per sample"),
    ({"labels": {"upper": "two"}}, "labels", "label: count"),
    ({"n": 3, "labels": ["upper"]}, "labels", "n=3"),
    ({"n": 0}, "n", "1"),
    ({"format": "gif"}, "format", "json"),
    ({"mode": "best"}, "mode", "plain"),
    ({"version": 99}, None, "versions: [1]"),
])
def test_bad_input_is_4xx_naming_the_field_and_the_limit(serving_api, body, field, limit):
    r = post(serving_api, "curves-cgan", **body)
    assert 400 <= r.status_code < 500, r.text
    error = r.json()["error"]
    assert error.get("field") == field and limit in error["message"] + json.dumps(error.get("problems", ""))


def test_rejection_refuses_clearly_when_the_budget_cannot_meet_n(serving_api):
    r = post(serving_api, "mnist-dcgan", n=200, mode="rejection", oversample=1)
    assert r.status_code == 422
    assert r.json()["error"]["field"] == "oversample" and "n × oversample = 200" in r.json()["error"]["message"]


def test_unknown_model_is_404_listing_the_known(serving_api):
    r = post(serving_api, "nope")
    assert r.status_code == 404 and "mnist-cgan" in r.json()["error"]["message"]


def test_samples_png_is_a_grid_a_browser_can_show(serving_api):
    r = serving_api.get("/v1/models/mnist-cgan/samples.png", params={"labels": "3:4,5:2", "seed": 1, "grid": "2x3"})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(r.content)).size == (3 * 28, 2 * 28)
    assert serving_api.get("/v1/models/quadratic/samples.png", params={"n": 50, "mode": "nice"}).status_code == 200
    assert serving_api.get("/v1/models/quadratic/samples.png", params={"grid": "0x0"}).status_code == 422


def test_metrics_count_requests_batches_and_candidates(serving_api):
    post(serving_api, "mnist-dcgan", n=2, mode="nice", oversample=5)
    text = serving_api.get("/metrics").text
    assert 'ganserve_sample_requests_total{format="json",mode="nice",model="mnist-dcgan",status="200"}' in text
    assert 'ganserve_candidates_scored_total{mode="nice",model="mnist-dcgan"}' in text
    assert "ganserve_batch_rows_bucket" in text and "ganserve_batch_queue_wait_seconds_bucket" in text
    post(serving_api, "no-such-model")
    assert 'ganserve_sample_errors_total{mode="plain",model="(unknown)",status="404"}' in serving_api.get("/metrics").text


@pytest.fixture(scope="module")
def small_queue_server(serving_repository, tmp_path_factory):
    srv = serve(serving_repository, tmp_path_factory.mktemp("queue-var"), queue_requests=1)
    yield srv
    srv.stop()


def test_a_full_queue_answers_503_with_retry_after(small_queue_server):
    def request(_):
        with httpx.Client(base_url=small_queue_server.url, timeout=60) as client:
            return post(client, "mnist-cgan", n=1024, mode="nice", oversample=8, format="npy")

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(request, range(6)))
    statuses = sorted(r.status_code for r in answers)
    assert 200 in statuses and 503 in statuses and set(statuses) <= {200, 503}
    refused = next(r for r in answers if r.status_code == 503)
    assert int(refused.headers["retry-after"]) >= 1
    assert "queue_requests" in refused.json()["error"]["message"]
