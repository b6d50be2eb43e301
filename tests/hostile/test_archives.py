"""Hostile archives through HTTP: damaged zip members, escaping and hidden paths, labels that are not class
indices, the quota from the headers, and body limits chosen by route, not by the content type claimed."""
from __future__ import annotations

import io
import struct
import zipfile

import numpy as np
import pytest
from PIL import Image

from tests.hostile.conftest import AUTH, raw
from tests.utils import kept_uploads, open_test_store

TRANSLATE = "/v1/models/digits-cyclegan/translate"


def png(value: int = 0) -> bytes:
    """A 28×28 grey digit-like image."""
    pixels = np.zeros((28, 28), np.uint8)
    pixels[8:20, 10:18] = 200 + value
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def zip_of(entries: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def npz(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def translate(client, data: bytes, name: str = "in.zip"):
    return client.post(TRANSLATE, files={"file": (name, data)}, data={"direction": "a_to_b", "format": "json"})


def upload(client, data: bytes, name: str = "data.zip"):
    return client.post("/v1/data", headers=AUTH, files={"file": (name, data)})


def message_of(response, status: int = 422) -> str:
    assert response.status_code == status, response.text
    return response.json()["error"]["message"]


def kept(hostile) -> list[str]:
    """The uploads kept so far (the module's server is shared by its tests)."""
    return kept_uploads(hostile.data)


def damaged(kind: str) -> bytes:
    """A zip of a.png and b.png with b.png damaged: its CRC, its deflate data, its method, or a size that lies."""
    data = bytearray(zip_of({"a.png": png(), "b.png": png(1)}, zipfile.ZIP_STORED if kind == "crc" else
                            zipfile.ZIP_DEFLATED))
    info = zipfile.ZipFile(io.BytesIO(bytes(data))).getinfo("b.png")
    start = info.header_offset + 30 + len("b.png")
    central = data.find(b"PK\x01\x02", data.find(b"PK\x01\x02") + 1)  # b.png's central directory header
    if kind == "crc":
        data[start + 40] ^= 0xFF
    elif kind == "deflate":
        for i in range(start, start + info.compress_size):
            data[i] ^= 0x5A
    elif kind == "method":
        data[info.header_offset + 8:info.header_offset + 10] = data[central + 10:central + 12] = struct.pack("<H", 9)
    else:
        lie = struct.pack("<I", info.file_size + (100 if kind == "longer" else -10))
        data[central + 24:central + 28] = data[info.header_offset + 22:info.header_offset + 26] = lie
    return bytes(data)


@pytest.mark.parametrize("kind", ["crc", "deflate", "method", "longer", "shorter"])
def test_a_damaged_zip_member_sent_to_translate_is_422_naming_it(client, kind):
    assert translate(client, zip_of({"a.png": png(), "b.png": png(1)})).status_code == 200
    assert message_of(translate(client, damaged(kind))).startswith("in.zip/b.png: ")


@pytest.mark.parametrize("path", ["../x.png", "digits/../../x.png", "/x.png"])
def test_members_that_escape_are_refused_by_translate_and_uploads_alike(client, hostile, path):
    assert "a zip entry may not escape" in message_of(translate(client, zip_of({"a.png": png(), path: png()})))
    before = kept(hostile)
    refused = message_of(upload(client, zip_of({"a/1.png": png(), "b/2.png": png(), path: png()})))
    assert f"data.zip/{path}: a zip entry may not escape" in refused
    assert kept(hostile) == before


def test_metadata_members_are_skipped_by_translate_and_uploads_alike(client, hostile):
    metadata = {".hidden/x.png": png(), "__MACOSX/._a.png": b"\0\5\26\7", "a/.DS_Store": b"\0\0\0\1Bud1"}
    r = translate(client, zip_of({"a.png": png(), "b.png": png(1), **metadata}))
    assert r.status_code == 200 and len(r.json()["images"]) == 2
    r = upload(client, zip_of({"a/1.png": png(), "b/2.png": png(1), **metadata}))
    assert r.status_code == 201, r.text
    assert r.json()["n"] == 2 and r.json()["classes"] == ["a", "b"] and r.json()["skipped"] == 3
    limits = client.get("/v1/limits").json()  # every upload limit is listed
    assert limits["max_upload_classes"] == 1000 and limits["max_upload_inflated_bytes"] == 4_000_000
    store = open_test_store(hostile.data)
    assert store.uploads.get(r.json()["id"])["skipped"] == 3  # counted where the upload is kept
    store.close()


@pytest.mark.parametrize("labels, shown", [([0, -5], "-5..0"), ([0, 2**62], "0..4611686018427387904")])
def test_upload_labels_must_be_class_indices(client, hostile, labels, shown):
    before = kept(hostile)
    refused = message_of(upload(client, npz(x=np.zeros((2, 8, 8), np.uint8), y=np.array(labels)), "labels.npz"))
    assert refused == f"labels.npz: labels y must be class indices in 0..999 (max_upload_classes); got {shown}"
    assert kept(hostile) == before


def test_the_quota_is_checked_from_the_headers_before_anything_is_decoded(client, hostile):
    before = kept(hostile)
    data = bytearray(npz(x=np.full((30, 28, 28), 7, np.uint8)))  # 23,520 bytes to store; the quota is 20,000
    data[data.find(b"\x07" * 64) + 10] ^= 0xFF  # its pixels fail their CRC: only decoding would see it
    refused = message_of(upload(client, bytes(data), "big.npz"), 507)
    assert "storing 23520 more bytes" in refused and "max_storage_bytes" in refused
    assert kept(hostile) == before


def body(length: int, content_type: str, path: str, keyed: bool = False) -> str:
    key = f"Authorization: {AUTH['Authorization']}\n" if keyed else ""
    return f"POST {path} HTTP/1.1\nHost: x\n{key}Content-Type: {content_type}\nContent-Length: {length}\n"


@pytest.mark.parametrize("content_type", ["application/octet-stream", "application/zip", "multipart/form-data; b=x"])
def test_an_open_route_bounds_its_body_by_max_body_bytes_whatever_type_it_claims(client, hostile, content_type):
    status, answer = raw(hostile.port, body(100_000, content_type, "/v1/models/quadratic/samples"))
    assert status == 413 and b"over the limit of 20000 bytes (max_body_bytes)" in answer
    status, answer = raw(hostile.port, body(100_000, content_type, "/v1/jobs", keyed=True))
    assert status == 413 and b"(max_body_bytes)" in answer
    streamed = client.post("/v1/models/quadratic/samples", headers={"content-type": content_type},
                           content=(bytes(4096) for _ in range(25)))  # no Content-Length: counted as it comes
    assert streamed.status_code == 413 and "(max_body_bytes)" in streamed.json()["error"]["message"]


def test_the_upload_routes_keep_their_own_limits(client, hostile):
    padding = np.random.default_rng(0).integers(0, 256, 90_000, dtype=np.uint8)  # 90 kB: past max_body_bytes
    r = upload(client, npz(x=np.zeros((1, 8, 8), np.uint8), pad=padding), "padded.npz")
    assert r.status_code == 201, r.text
    status, answer = raw(hostile.port, body(300_000, "multipart/form-data; boundary=b", "/v1/data", keyed=True))
    assert status == 413 and b"(max_upload_bytes)" in answer
    r = translate(client, zip_of({"a.png": png(), "pad.png": padding.tobytes()}, zipfile.ZIP_STORED))
    assert "in.zip/pad.png: not a readable image" in message_of(r)  # read, not refused by its size
    status, answer = raw(hostile.port, body(17 * 2**20, "multipart/form-data; boundary=b", TRANSLATE))
    assert status == 413 and b"(max_translate_bytes)" in answer
