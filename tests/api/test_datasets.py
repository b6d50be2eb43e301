"""Bulk labelled datasets for augmentation, streamed through real HTTP."""
from __future__ import annotations

import io
import tarfile
import zipfile

import numpy as np
import pytest
from PIL import Image


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


def windows_equal(api, body, start, n, key="x"):
    whole = np.load(io.BytesIO(dataset(api, **body).content))
    part = dataset(api, **{**body, "start": start, "n": n})
    assert part.status_code == 200, part.text
    assert part.headers["x-start"] == str(start) and part.headers["x-count"] == str(n)
    window = np.load(io.BytesIO(part.content))
    np.testing.assert_array_equal(window[key], whole[key][start:start + n])
    if "y" in whole:
        np.testing.assert_array_equal(window["y"], whole["y"][start:start + n])
    return whole, window


@pytest.mark.parametrize("mode", ["plain", "nice", "rejection", "filtered"])
def test_a_window_from_start_is_exactly_that_part_of_the_whole(serving_api, mode):
    body = {"model": "mnist-cgan", "labels": {str(d): 30 for d in range(10)}, "order": "interleaved", "seed": 4,
            "mode": mode, "oversample": 3, "threshold": 0.12}
    whole, window = windows_equal(serving_api, body, 257, 33)  # across a chunk boundary (256)
    if mode != "plain":
        np.testing.assert_array_equal(window["scores"], whole["scores"][257:290])


def test_a_window_of_a_label_cycling_dataset_needs_no_label_list(serving_api):
    windows_equal(serving_api, {"model": "mnist-cgan", "n": 600, "seed": 8}, 590, 10)


def test_interleaved_counts_are_class_balanced_in_every_window(serving_api):
    body = {"model": "mnist-cgan", "labels": {str(d): 40 for d in range(10)}, "order": "interleaved", "seed": 1}
    y = np.load(io.BytesIO(dataset(serving_api, **body).content))["y"]
    assert y[:10].tolist() == list(range(10))
    for start in range(0, len(y) - 100 + 1, 7):  # every window of 10·k, not only aligned ones
        assert np.bincount(y[start:start + 100], minlength=10).tolist() == [10] * 10
    uneven = np.load(io.BytesIO(dataset(serving_api, model="mnist-cgan", labels={"1": 30, "2": 10},
                                        order="interleaved", seed=1).content))["y"]
    assert np.bincount(uneven)[1:].tolist() == [30, 10] and uneven[:4].tolist() == [1, 1, 2, 1]
    assert all(np.bincount(uneven[i:i + 4], minlength=3)[2] == 1 for i in range(0, 40, 4))


def test_tar_is_webdataset_and_readable_while_it_streams(serving_api, serving_server):
    body = {"model": "mnist-cgan", "labels": {"2": 300, "5": 300}, "order": "interleaved", "seed": 6}
    arrays = np.load(io.BytesIO(dataset(serving_api, **body).content))
    seen = []
    with serving_server.client() as real, real.stream("POST", "/v1/datasets", json={**body, "format": "tar", "start": 100, "n": 400}) as r:
        assert r.status_code == 200 and r.headers["content-type"] == "application/x-tar"
        stream = Stream(r.iter_bytes())
        with tarfile.open(fileobj=stream, mode="r|") as archive:
            for member in archive:
                seen.append((member.name, archive.extractfile(member).read()))
                if len(seen) == 2:
                    first_whole_at = stream.received
    # the first sample was whole after the first chunk of the response, long before its end
    assert first_whole_at < stream.received / 2
    names = [name for name, _ in seen]
    assert names[:4] == ["000100.png", "000100.cls", "000101.png", "000101.cls"] and len(names) == 800
    pngs = [np.asarray(Image.open(io.BytesIO(data))) for name, data in seen if name.endswith(".png")]
    np.testing.assert_array_equal(np.stack(pngs), arrays["x"][100:500])
    assert [int(data) for name, data in seen if name.endswith(".cls")] == arrays["y"][100:500].tolist()


class Stream(io.RawIOBase):
    """A file over an iterator of byte chunks, read as they come."""

    def __init__(self, chunks):
        self.chunks, self.left, self.received = chunks, b"", 0

    def readable(self):
        return True

    def readinto(self, buffer):
        while not self.left:
            self.left = next(self.chunks, None)
            if self.left is None:
                return 0
            self.received += len(self.left)
        k = min(len(buffer), len(self.left))
        buffer[:k], self.left = self.left[:k], self.left[k:]
        return k


def test_filtered_dataset_reports_its_acceptance_rate(serving_api):
    body = {"model": "mnist-cgan", "n": 300, "seed": 3, "mode": "filtered", "oversample": 4, "threshold": 0.12}
    arrays = np.load(io.BytesIO(dataset(serving_api, **body).content))
    rate = float(arrays["acceptance_rate"])
    assert 0 < rate <= 1 and arrays["scores"].shape == (300,)
    kept = arrays["scores"] >= 0.12
    assert kept.mean() >= rate  # a slot none of whose candidates passed keeps its most confident one
    sampled = serving_api.post("/v1/models/mnist-cgan/samples", json={**{k: body[k] for k in body if k != "model"},
                                                                       "n": 20})
    assert sampled.status_code == 200 and sampled.json()["mode"] == "filtered"
    assert 0 < float(sampled.headers["x-acceptance-rate"]) <= 1
    np.testing.assert_allclose(sampled.json()["scores"], arrays["scores"][:20], atol=1e-6)


def test_filtered_needs_a_labelled_model_the_classifier_knows(serving_api):
    refused = dataset(serving_api, model="mnist-dcgan", n=5, mode="filtered")
    assert refused.status_code == 422 and "unconditional" in refused.json()["error"]["message"]
    curves = dataset(serving_api, model="curves-cgan", n=5, mode="filtered")
    assert curves.status_code == 422 and curves.json()["error"]["field"] == "mode"


def test_samples_npz_uploads_back_as_training_data(serving_api):
    npz = serving_api.post("/v1/models/mnist-cgan/samples", json={"labels": {"4": 3, "9": 2}, "format": "npz"})
    uploaded = serving_api.post("/v1/data", files={"file": ("s.npz", npz.content)})
    assert uploaded.status_code == 201, uploaded.text
    assert uploaded.json()["classes"] == ["4", "9"] and uploaded.json()["n"] == 5


def test_bad_windows_and_orders_name_the_field(serving_api):
    past = dataset(serving_api, model="mnist-cgan", labels={"1": 5}, start=3, n=5)
    assert past.status_code == 422 and past.json()["error"]["field"] == "start"
    listed = dataset(serving_api, model="mnist-cgan", labels=["1", "2"], order="interleaved")
    assert listed.status_code == 422 and listed.json()["error"]["field"] == "order"
    assert dataset(serving_api, model="quadratic", n=5, format="tar").json()["error"]["field"] == "format"
