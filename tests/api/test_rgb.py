"""RGB images at another size are served like grey digits: PNG grids, JSON PNGs, npz, nice and rejection, every
dataset format; the filter's digit classifier refuses them by name. The tiny image-cgan model is 3×16×16 with
ten labels."""
from __future__ import annotations

import base64
import io
import tarfile
import zipfile

import numpy as np
from PIL import Image

MODEL = "/v1/models/image-cgan"


def test_the_png_grid_is_rgb_at_the_models_size(serving_api):
    response = serving_api.get(f"{MODEL}/samples.png", params={"n": 6, "seed": 2})
    assert response.status_code == 200
    image = Image.open(io.BytesIO(response.content))
    assert image.mode == "RGB" and image.size[0] % 16 == 0 and image.size[1] % 16 == 0


def test_json_pngs_and_npz_keep_three_channels(serving_api):
    body = {"n": 4, "seed": 1, "labels": ["1", "2", "3", "4"]}
    pngs = serving_api.post(f"{MODEL}/samples", json=body).json()  # images as base64 PNGs
    first = Image.open(io.BytesIO(base64.b64decode(pngs["samples"][0])))
    assert first.mode == "RGB" and first.size == (16, 16)
    arrays = np.load(io.BytesIO(serving_api.post(f"{MODEL}/samples", json={**body, "format": "npz"}).content))
    assert arrays["x"].shape[0] == 4 and 3 in arrays["x"].shape[1:] and 16 in arrays["x"].shape[1:]
    assert arrays["y"].tolist() == [1, 2, 3, 4]


def test_nice_and_rejection_rank_rgb_samples(serving_api):
    for mode in ("nice", "rejection"):
        response = serving_api.post(f"{MODEL}/samples", json={"n": 3, "seed": 5, "mode": mode, "oversample": 40,
                                                            "labels": ["7", "7", "7"]})
        assert response.status_code == 200, (mode, response.text)
        assert len(response.json()["samples"]) == 3


def test_every_dataset_format_carries_rgb_images(serving_api):
    body = {"model": "image-cgan", "labels": {"0": 2, "9": 1}, "seed": 4}
    npz = np.load(io.BytesIO(serving_api.post("/v1/datasets", json={**body, "format": "npz"}).content))
    assert len(npz["x"]) == 3 and sorted(npz["y"].tolist()) == [0, 0, 9]
    with zipfile.ZipFile(io.BytesIO(serving_api.post("/v1/datasets", json={**body, "format": "zip"}).content)) as z:
        pngs = [n for n in z.namelist() if n.endswith(".png")]
        assert len(pngs) == 3 and Image.open(io.BytesIO(z.read(pngs[0]))).mode == "RGB"
    with tarfile.open(fileobj=io.BytesIO(serving_api.post("/v1/datasets", json={**body, "format": "tar"}).content)) as t:
        member = next(m for m in t.getmembers() if m.name.endswith(".png"))
        assert Image.open(t.extractfile(member)).mode == "RGB"


def test_the_digit_filter_refuses_rgb_models_by_shape(serving_api):
    response = serving_api.post(f"{MODEL}/samples", json={"n": 2, "mode": "filtered", "labels": ["1", "2"]})
    assert response.status_code == 422 and "[3, 16, 16]" in response.text


def test_the_card_lists_the_datas_labels_and_shape(serving_api):
    card = serving_api.get(MODEL).json()["card"]
    assert card["sample_shape"] == [3, 16, 16] and card["labels"] == [str(d) for d in range(10)]
