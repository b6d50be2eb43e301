"""Hugging Face `datasets` reads what /v1/datasets streams: the zip as an imagefolder, the tar as a webdataset."""
from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

datasets = pytest.importorskip("datasets")
pytestmark = pytest.mark.system  # importing `datasets` (pyarrow, pandas) alone takes a few seconds


@pytest.fixture(autouse=True)
def offline_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))


def fetch(api, tmp_path, fmt: str) -> tuple:
    body = {"model": "mnist-cgan", "labels": {"3": 6, "8": 4}, "order": "interleaved", "seed": 2}
    arrays = np.load(io.BytesIO(api.post("/v1/datasets", json=body).content))
    path = tmp_path / f"aug.{fmt}"
    path.write_bytes(api.post("/v1/datasets", json={**body, "format": fmt}).content)
    return path, arrays


def test_the_zip_loads_as_an_imagefolder(serving_api, tmp_path):
    path, arrays = fetch(serving_api, tmp_path, "zip")
    # Unpacked first: datasets 5.2 names the labels of a zip given as data_files after the folder the zip
    # lies in (its _generate_examples takes the archive's path for the image's), not after its class folders.
    with zipfile.ZipFile(path) as archive:
        archive.extractall(tmp_path / "unpacked")
    loaded = datasets.load_dataset("imagefolder", data_dir=str(tmp_path / "unpacked"), split="train",
                                   cache_dir=str(tmp_path / "hf-cache"))
    names = loaded.features["label"].names
    assert len(loaded) == 10 and names == ["3", "8"]
    assert sorted(names[label] for label in loaded["label"]) == sorted(arrays["label_names"][arrays["y"]])
    assert np.asarray(loaded[0]["image"]).shape == (28, 28)


def test_the_tar_loads_as_a_webdataset(serving_api, tmp_path):
    path, arrays = fetch(serving_api, tmp_path, "tar")
    loaded = datasets.load_dataset("webdataset", data_files={"train": str(path)}, split="train",
                                   cache_dir=str(tmp_path / "hf-cache"))
    assert len(loaded) == 10 and loaded["__key__"][:2] == ["000000", "000001"]
    assert [int(c) for c in loaded["cls"]] == arrays["y"].tolist()
    np.testing.assert_array_equal(np.stack([np.asarray(img) for img in loaded["png"]]), arrays["x"])
