"""Bulk labelled datasets for augmentation, streamed through real HTTP."""
from __future__ import annotations

import io
import zipfile

import numpy as np


def dataset(api, **body):
    return api.post("/v1/datasets", json=body)


def test_npz_holds_the_requested_label_counts_across_chunks(serving_api):
    response = dataset(serving_api, model="mnist-cgan", labels={"3": 300, "7": 200}, seed=5)
    assert response.status_code == 200, response.text
    assert response.headers["x-seed"] == "5" and "attachment" in response.headers["content-disposition"]
    arrays = np.load(io.BytesIO(response.content))
    assert arrays["x"].dtype == np.uint8 and arrays["x"].shape == (500, 28, 28)
    names = arrays["label_names"][arrays["y"]]
    assert (names[:300] == "3").all() and (names[300:] == "7").all()


def test_plain_dataset_continues_the_samples_of_the_same_seed(serving_api):
    arrays = np.load(io.BytesIO(dataset(serving_api, model="mnist-dcgan", n=300, seed=9).content))
    first = serving_api.post("/v1/models/mnist-dcgan/samples", json={"n": 20, "seed": 9, "format": "npy"})
    np.testing.assert_array_equal(arrays["x"][:20], np.load(io.BytesIO(first.content)))


def test_same_request_gives_the_same_bytes(serving_api):
    body = {"model": "mnist-cgan", "n": 40, "seed": 2, "mode": "nice", "oversample": 4, "format": "zip"}
    assert dataset(serving_api, **body).content == dataset(serving_api, **body).content


def test_zip_has_class_folders_that_upload_back_as_training_data(serving_api, serving_server):
    response = dataset(serving_api, model="mnist-cgan", labels={"0": 3, "5": 4}, seed=1, format="zip")
    assert response.status_code == 200
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        names = archive.namelist()
        index = archive.read("index.csv").decode().splitlines()
    assert sum(n.startswith("0/") for n in names) == 3 and sum(n.startswith("5/") for n in names) == 4
    assert index[0] == "file,label,score" and len(index) == 8
    uploaded = serving_api.post("/v1/data", files={"file": ("aug.zip", response.content)})
    assert uploaded.status_code == 201 and uploaded.json()["classes"] == ["0", "5"]


def test_nice_dataset_carries_scores(serving_api):
    arrays = np.load(io.BytesIO(dataset(serving_api, model="quadratic", n=50, mode="nice", oversample=5).content))
    assert arrays["x"].dtype == np.float32 and arrays["x"].shape == (50, 2)
    assert arrays["scores"].shape == (50,)


def test_bad_dataset_requests_name_the_field(serving_api):
    over = dataset(serving_api, model="mnist-dcgan", n=10**7)
    assert over.status_code == 422 and over.json()["error"]["field"] == "n" and "100000" in over.text
    numbers_as_zip = dataset(serving_api, model="quadratic", n=5, format="zip")
    assert numbers_as_zip.status_code == 422 and numbers_as_zip.json()["error"]["field"] == "format"
    assert dataset(serving_api, model="nope", n=5).status_code == 404
    assert dataset(serving_api, model="mnist-cgan", labels={"12": 3}).status_code == 422
