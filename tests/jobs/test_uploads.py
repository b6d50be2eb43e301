"""Uploads through HTTP: good data is stored whole; every kind of bad data is refused and nothing kept."""
from __future__ import annotations

import io
import struct
import zipfile
import zlib

import numpy as np
import pytest
from PIL import Image


def png_bytes(size=(8, 8), mode="L", value=128) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, value).save(buffer, format="PNG")
    return buffer.getvalue()


def zip_of(entries: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def npz_of(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def huge_png_header(width=40_000, height=40_000) -> bytes:
    """A tiny file whose header claims a 1.6-gigapixel image (a decompression bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def upload(api, data: bytes, name: str):
    return api.post("/v1/data", files={"file": (name, data, "application/octet-stream")})


def uploads_on_disk(server) -> list[str]:
    folder = server.data / "uploads"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_zip_of_class_folders_is_stored_with_labels(api):
    data = zip_of({f"digits/{c}/{i}.png": png_bytes(value=20 * j + i) for j, c in enumerate("ab") for i in range(3)})
    response = upload(api, data, "digits.zip")
    assert response.status_code == 201, response.text
    meta = response.json()
    assert meta["n"] == 6 and meta["classes"] == ["a", "b"] and meta["labelled"] and meta["shape"] == [8, 8]
    assert api.get(f"/v1/data/{meta['id']}").json() == meta


def test_npz_with_x_and_y_is_stored(api, server):
    x = np.random.default_rng(0).integers(0, 256, size=(10, 28, 28), dtype=np.uint8)
    response = upload(api, npz_of(x=x, y=np.arange(10) % 10), "x.npz")
    assert response.status_code == 201, response.text
    meta = response.json()
    assert meta["n"] == 10 and meta["shape"] == [28, 28]
    stored = np.load(server.data / "uploads" / meta["id"] / "data.npz")
    np.testing.assert_array_equal(stored["x"], x)


@pytest.mark.parametrize("keys", [("x", "y"), ("samples", "labels")])  # today's names and /samples' old ones
def test_npz_of_the_service_uploads_back_under_either_names(api, server, keys):
    x = np.random.default_rng(1).integers(0, 256, size=(6, 28, 28), dtype=np.uint8)
    arrays = {keys[0]: x, keys[1]: np.array([3, 3, 7, 7, 7, 3]), "label_names": np.array(list("0123456789"))}
    response = upload(api, npz_of(**arrays, scores=np.zeros(6, np.float32)), "samples.npz")
    assert response.status_code == 201, response.text
    meta = response.json()
    assert meta["n"] == 6 and meta["classes"] == ["3", "7"] and meta["labelled"]
    np.testing.assert_array_equal(np.load(server.data / "uploads" / meta["id"] / "data.npz")["x"], x)


def test_mixed_sizes_of_one_aspect_are_resized(api):
    data = zip_of({"a/1.png": png_bytes((8, 8)), "a/2.png": png_bytes((8, 8)), "b/3.png": png_bytes((16, 16))})
    response = upload(api, data, "mixed.zip")
    assert response.status_code == 201 and response.json()["shape"] == [8, 8]


def test_rgb_images_stay_rgb(api):
    data = zip_of({"a/1.png": png_bytes(mode="RGB", value=(10, 20, 30)), "b/2.png": png_bytes(mode="RGB")})
    assert upload(api, data, "rgb.zip").json()["shape"] == [8, 8, 3]


@pytest.mark.parametrize("name, data, words", [
    ("escape.zip", zip_of({"a/1.png": png_bytes(), "../evil.png": png_bytes()}), ["../evil.png", "escape"]),
    ("absolute.zip", zip_of({"/etc/evil.png": png_bytes()}), ["/etc/evil.png", "escape"]),
    ("bomb.zip", zip_of({"a/1.png": b"\0" * 20_000_000}), ["a/1.png", "ratio"]),
    ("pixels.zip", zip_of({"a/1.png": huge_png_header(), "b/2.png": png_bytes()}), ["a/1.png", "pixels"]),
    ("notimage.zip", zip_of({"a/1.png": png_bytes(), "b/readme.txt": b"hello"}), ["b/readme.txt", "readable"]),
    ("truncated.zip", zip_of({"a/1.png": png_bytes()[:30], "b/2.png": png_bytes()}), ["a/1.png", "readable"]),
    ("aspect.zip", zip_of({"a/1.png": png_bytes((8, 8)), "a/2.png": png_bytes((8, 8)), "b/3.png": png_bytes((8, 16))}),
     ["b/3.png", "resized"]),
    ("flat.zip", zip_of({"1.png": png_bytes()}), ["1.png", "class"]),
    ("empty.zip", zip_of({}), ["no images"]),
    ("labels.npz", npz_of(x=np.zeros((5, 8, 8), np.uint8), y=np.zeros(4, np.int64)), ["labels.npz", "labels"]),
    ("shape.npz", npz_of(x=np.zeros((5, 8), np.uint8)), ["shape.npz", "x must be"]),
    ("nox.npz", npz_of(weights=np.zeros((5, 8, 8), np.uint8), bias=np.zeros(5)), ["nox.npz", "'x'"]),
    ("text.txt", b"just text", ["text.txt", "zip"]),
])
def test_bad_upload_is_refused_naming_the_file_and_nothing_is_kept(api, server, name, data, words):
    before = uploads_on_disk(server)
    response = upload(api, data, name)
    assert response.status_code == 422, response.text
    message = response.json()["error"]["message"]
    for word in words:
        assert word in message
    assert uploads_on_disk(server) == before


def test_job_on_an_upload_is_validated(api):
    unlabelled = upload(api, npz_of(x=np.zeros((4, 28, 28), np.uint8)), "u.npz").json()["id"]
    refused = api.post("/v1/jobs", json={"family": "mnist-cgan", "data": unlabelled})
    assert refused.status_code == 422 and "labels" in refused.json()["error"]["message"]
    missing = api.post("/v1/jobs", json={"family": "mnist-mlp", "data": "0" * 32})
    assert missing.status_code == 422 and missing.json()["error"]["field"] == "data"
    assert api.post("/v1/jobs", json={"family": "quadratic", "data": unlabelled}).status_code == 422
