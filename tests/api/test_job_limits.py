"""Jobs that could only fail are refused at submission (422 naming the field and the limit), never queued: a job
estimated past max_job_memory, data a family cannot train on, params its networks cannot run with. Without Redis a
job that passes every check is answered 503 (it could not be queued), so 503 here means "accepted"."""
import io

import numpy as np
import pytest

from service.jobs import memory
from service.jobs.protocol import catalog

MNIST_MLP_HUGE = {"family": "mnist-mlp", "params": {"g_hidden": 4096, "d_hidden": 4096, "batch_size": 1024}}
RGB_HUGE = {"family": "rgb-dcgan", "data": "mnist",
            "params": {"image_size": 128, "g_channels": 1024, "d_channels": 512, "batch_size": 1024}}


@pytest.fixture(scope="module")
def jobs_api(make_app):
    with make_app() as client:
        yield client


def refusal(client, body) -> dict:
    response = client.post("/v1/jobs", json=body)
    assert response.status_code == 422, response.text
    return response.json()["error"]


@pytest.mark.parametrize("body, named", [
    (RGB_HUGE, ["params.batch_size", "params.d_channels", "params.g_channels", "params.image_size"]),
    (MNIST_MLP_HUGE, ["params.batch_size", "params.d_hidden", "params.g_hidden"]),
])
def test_job_estimated_past_max_job_memory_is_422_naming_its_params(jobs_api, body, named):
    error = refusal(jobs_api, body)
    assert error["field"] == named[0]
    for name in named:
        assert name in error["message"]
    estimate = memory.estimate(catalog()[body["family"]], body["params"], images=5000)  # MNIST's
    assert f"about {estimate // memory.MB:,} MB of memory on 5,000 images" in error["message"]
    assert f"limit of {8192:,} MB (max_job_memory)" in error["message"]


@pytest.mark.parametrize("family", sorted(catalog()))
def test_every_family_at_its_defaults_fits_the_default_limit(jobs_api, family):
    data = "mnist" if not catalog()[family]["default_data"] else "default"
    assert jobs_api.post("/v1/jobs", json={"family": family, "data": data}).status_code == 503


def test_max_job_memory_is_configured_and_listed(make_app):
    with make_app(max_job_memory=300 * 2**20) as client:
        assert client.get("/v1/limits").json()["max_job_memory"] == 300 * 2**20
        error = refusal(client, {"family": "quadratic", "params": {"batch_size": 2}})
        assert error["field"] == "params.batch_size" and "limit of 300 MB" in error["message"]


def test_rgb_dcgan_on_default_data_is_422(jobs_api):
    error = refusal(jobs_api, {"family": "rgb-dcgan"})
    assert error["field"] == "data" and "'mnist'" in error["message"]
    assert jobs_api.post("/v1/jobs", json={"family": "rgb-dcgan", "data": "mnist"}).status_code == 503


@pytest.mark.parametrize("family", ["mnist-mlp", "mnist-dcgan", "mnist-cgan", "rgb-dcgan", "image-cgan"])
def test_batch_of_one_under_batch_norm_is_422(jobs_api, family):
    error = refusal(jobs_api, {"family": family, "data": "mnist", "params": {"batch_size": 1}})
    assert error["field"] == "params.batch_size"
    assert error["message"] == "params.batch_size: must be >= 2, got 1"


def test_batch_of_one_without_batch_norm_is_accepted(jobs_api):
    assert jobs_api.post("/v1/jobs", json={"family": "quadratic", "params": {"batch_size": 1}}).status_code == 503


def test_param_errors_read_field_colon_message(jobs_api):
    error = refusal(jobs_api, {"family": "quadratic", "params": {"g_hidden": "many"}})
    assert error["message"] == "params.g_hidden: must be an integer, got 'many'"
    assert error["field"] == "params.g_hidden"


def upload(client, images: int) -> str:
    buffer = io.BytesIO()
    np.savez(buffer, x=np.random.default_rng(0).integers(0, 255, (images, 28, 28), dtype=np.uint8))
    response = client.post("/v1/data", files={"file": ("few.npz", buffer.getvalue())})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_an_upload_too_small_to_hold_any_out_is_422_for_a_sampling_family(jobs_api):
    few, enough = upload(jobs_api, 2), upload(jobs_api, 3)
    error = refusal(jobs_api, {"family": "rgb-dcgan", "data": few})
    assert error["field"] == "data" and "at least 3 images" in error["message"] and "has 2" in error["message"]
    assert jobs_api.post("/v1/jobs", json={"family": "rgb-dcgan", "data": enough}).status_code == 503


def test_a_translation_trains_on_a_single_image_upload(jobs_api):
    # measured: digits-cyclegan trains and exports on a 1-image domain (it measures on the built-in digits)
    one = upload(jobs_api, 1)
    assert jobs_api.post("/v1/jobs", json={"family": "digits-cyclegan",
                                           "data": {"a": one, "b": "uci"}}).status_code == 503


@pytest.mark.parametrize("expression", ["__import__('os').system('true')", "g_hidden.bit_length()", "[1][0]",
                                        "(lambda: 1)()", "batch_size if 1 else open('x')"])
def test_memory_expressions_are_arithmetic_only(expression):
    with pytest.raises(ValueError, match="is not allowed"):
        memory.evaluate(expression, {"g_hidden": 8, "batch_size": 2})


def test_memory_expressions_evaluate_like_python():
    params = {"image_size": 28, "classes": 0, "c": 3}
    for expression in ("image_size // (8 if image_size % 8 == 0 else 4)", "(classes or 1000) * c**2 - 1",
                       "1 < c <= 3 and c * 2"):
        assert memory.evaluate(expression, params) == float(eval(expression, {}, params))
