"""Hostile requests: every one is a 4xx (or a clear 503) naming the field and the limit, never a 500,
and none costs the memory or work its limit bounds."""
from __future__ import annotations

import time

import pytest

from tests.hostile.conftest import AUTH, raw


def error_of(response) -> dict:
    assert response.status_code < 500 or response.status_code == 503, response.text
    return response.json()["error"]


def test_label_counts_are_checked_before_a_label_list_is_built(client):
    started = time.monotonic()
    r = client.post("/v1/datasets", json={"model": "mnist-cgan", "labels": {"0": 300000000, "1": -299999990},
                                          "seed": 1})
    assert r.status_code == 422 and time.monotonic() - started < 1
    assert error_of(r)["message"].startswith("labels: the count for '1' must be non-negative")


def test_a_dataset_over_its_candidate_budget_is_refused_before_it_streams(client):
    r = client.post("/v1/datasets", json={"model": "mnist-cgan", "n": 100_000, "mode": "nice", "oversample": 50})
    assert r.status_code == 422 and "max_dataset_candidates" in error_of(r)["message"]


def test_nice_dataset_of_a_model_without_discriminator_is_refused_before_the_stream(serving_repository):
    from service.repository import load
    from service.sampling import SamplingError, modes

    model = load("quadratic", 1, serving_repository / "quadratic" / "1")
    model.discriminator = None  # as a model shipped without one
    with pytest.raises(SamplingError, match="^mode: model 'quadratic' has no discriminator"):
        modes.get("nice").check(model)


def test_a_keyed_route_refuses_before_reading_a_huge_body(hostile):
    started = time.monotonic()
    status, answer = raw(hostile.port, "POST /v1/data HTTP/1.1\nHost: x\nContent-Type: multipart/form-data; "
                         "boundary=b\nContent-Length: 1500000000\n", b"--b\r\n")
    assert status == 401 and b"authorization" in answer and time.monotonic() - started < 2
    assert not (hostile.data / "uploads").exists() or not any((hostile.data / "uploads").iterdir())


def test_a_body_over_the_limit_is_413_by_its_length_and_by_its_bytes(client, hostile):
    status, answer = raw(hostile.port, "POST /v1/jobs HTTP/1.1\nHost: x\nAuthorization: " + AUTH["Authorization"]
                         + "\nContent-Type: application/json\nContent-Length: 200000000\n")
    assert status == 413 and b"max_body_bytes" in answer
    chunked = client.post("/v1/jobs", headers={**AUTH, "content-type": "application/json"},
                          content=(b'{"family": "quadratic", "params": {"x": "' + b"y" * 50_000 + b'"}}'[i:i + 4096]
                                   for i in range(0, 60_000, 4096)))
    assert chunked.status_code == 413


def test_a_body_trickling_in_is_cut_off_with_408(hostile):
    started = time.monotonic()
    status, _ = raw(hostile.port, "POST /v1/models/quadratic/samples HTTP/1.1\nHost: x\n"
                    "Content-Type: application/json\nContent-Length: 100\n", b'{"n": 1', timeout=6)
    assert status == 408 and time.monotonic() - started < 5


@pytest.mark.parametrize("body, field", [
    ('{"family": "quadratic", "params": {"ema": NaN}}', "params.ema"),
    ('{"family": "quadratic", "params": {"lr": Infinity}}', "params.lr"),
    ('{"family": "quadratic", "seed": -Infinity}', "seed"),
])
def test_nan_and_infinity_are_422_naming_the_field(client, body, field):
    r = client.post("/v1/jobs", headers={**AUTH, "content-type": "application/json"}, content=body)
    assert r.status_code == 422 and error_of(r)["field"] == field


def test_nan_in_a_sample_request_is_422(client):
    r = client.post("/v1/models/quadratic/samples", headers={"content-type": "application/json"},
                    content='{"n": 2, "truncation": NaN}')
    assert r.status_code == 422 and error_of(r)["field"] == "truncation"


@pytest.mark.parametrize("path", ["/v1/jobs/" + "a" * 300, "/v1/jobs/abc", "/v1/data/" + "b" * 300,
                                  "/v1/jobs/" + "c" * 300 + "/events"])
def test_unknown_or_over_long_ids_are_404_and_touch_no_file(client, hostile, path):
    assert client.get(path, headers=AUTH).status_code == 404
    assert client.delete("/v1/jobs/abc", headers=AUTH).status_code == 404
    jobs = hostile.data / "jobs"
    assert not jobs.exists() or not list(jobs.glob("abc*"))


def test_labels_with_non_ascii_digits_are_422(client):
    r = client.get("/v1/models/mnist-cgan/samples.png", params={"labels": "0:²"})
    assert r.status_code == 422 and error_of(r)["field"] == "labels"


def test_a_message_keeps_its_quotes(client):
    r = client.post("/v1/models/quadratic/samples", json={"n": 2, "format": "json", "grid": [1, 2]})
    assert r.status_code == 422 and error_of(r)["message"].endswith("'json'")


def test_a_job_while_the_broker_is_down_is_503_without_its_url(client):
    r = client.post("/v1/jobs", headers=AUTH, json={"family": "quadratic"})
    assert r.status_code == 503 and "127.0.0.1:1" not in r.text and "redis://" not in r.text


def test_readyz_reports_redis_apart_from_serving(client):
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json()["redis"] == "down" and "mnist-cgan" in r.json()["models"]
