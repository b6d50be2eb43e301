"""Hostile uploads: bombs and damaged archives are 422s naming the file, checked before they inflate,
and nothing partial is kept."""
from __future__ import annotations

import io
import struct
import zipfile
import zlib

import numpy as np
import pytest
from PIL import Image

from tests.hostile.conftest import AUTH


def upload(client, raw: bytes, name: str = "data.npz"):
    return client.post("/v1/data", headers=AUTH, files={"file": (name, raw)})


def npz(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def npy_member(archive: zipfile.ZipFile, name: str, header: dict, payload_bytes: int) -> None:
    """An .npy member whose header says one thing and whose (deflated) zeros are payload_bytes long."""
    text = repr(header).encode()
    text += b" " * (63 - (len(text) + 10) % 64) + b"\n"
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_DEFLATED
    with archive.open(info, "w", force_zip64=True) as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text)
        for start in range(0, payload_bytes, 2**20):
            f.write(bytes(min(2**20, payload_bytes - start)))


def zip_of(build, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        build(archive)
    return buffer.getvalue()


def assert_refused(response, *words):
    assert response.status_code == 422, response.text
    message = response.json()["error"]["message"]
    assert all(w in message for w in words), message


def nothing_kept(hostile):
    folder = hostile.data / "uploads"
    return not folder.exists() or not list(folder.iterdir())


def test_labels_that_would_inflate_far_beyond_the_images_are_refused_from_their_header(client, hostile):
    def build(archive):
        npy_member(archive, "x.npy", {"descr": "|u1", "fortran_order": False, "shape": (4, 28, 28)}, 4 * 28 * 28)
        npy_member(archive, "y.npy", {"descr": "<i8", "fortran_order": False, "shape": (2**24,)}, 0)
    raw = zip_of(build)
    assert len(raw) < 200_000
    assert_refused(upload(client, raw), "labels for 4 images")
    assert nothing_kept(hostile)


def test_an_npz_member_deflated_past_the_zip_ratio_is_refused_before_it_inflates(client, hostile):
    def build(archive):  # 64 MB of labels in 65 kB: refused by its ratio, as a zip entry is
        npy_member(archive, "x.npy", {"descr": "|u1", "fortran_order": False, "shape": (4, 28, 28)}, 4 * 28 * 28)
        npy_member(archive, "y.npy", {"descr": "<i8", "fortran_order": False, "shape": (2**23,)}, 64 * 2**20)
    raw = zip_of(build)
    assert len(raw) < 200_000
    assert_refused(upload(client, raw), "data.npz/y.npy", "ratio over 200:1")
    assert nothing_kept(hostile)


def test_a_header_declaring_a_trillion_elements_is_refused(client):
    raw = zip_of(lambda a: npy_member(a, "x.npy", {"descr": "<f8", "fortran_order": False,
                                                   "shape": (10**6, 1000, 1000)}, 0))
    assert_refused(upload(client, raw), "over the limit")


def test_float64_images_over_the_inflated_budget_are_refused(client):
    raw = zip_of(lambda a: npy_member(a, "x.npy", {"descr": "<f8", "fortran_order": False,
                                                   "shape": (10, 316, 316)}, 0))
    assert_refused(upload(client, raw), "max_upload_inflated_bytes")


@pytest.mark.parametrize("x, words", [
    (np.full((3, 8, 8), np.nan), ["NaN or infinite"]),
    (np.ones((3, 8, 8), np.complex64), ["real numbers"]),
    (np.array([[["a"] * 8] * 8] * 3), ["real numbers"]),
])
def test_arrays_that_are_not_finite_real_pixels_are_refused(client, x, words):
    assert_refused(upload(client, npz(x=x)), *words)


def test_a_member_named_like_an_array_that_is_not_one_is_refused(client):
    raw = zip_of(lambda a: a.writestr("x.npy", b"just some bytes, not an array"))
    assert_refused(upload(client, raw), "not a readable .npy")


def test_a_zip_of_large_single_colour_images_is_refused_by_its_pixels(client):
    png = io.BytesIO()
    Image.new("RGB", (1000, 1000), (200, 10, 10)).save(png, format="PNG")
    raw = zip_of(lambda a: [a.writestr(f"red/{i}.png", png.getvalue()) for i in range(3)])
    assert len(raw) < 100_000
    assert_refused(upload(client, raw), "pixels")


def test_damaged_zip_entries_are_422_naming_the_entry(client):
    png = io.BytesIO()
    Image.new("L", (8, 8), 3).save(png, format="PNG")
    good = zip_of(lambda a: [a.writestr(f"digits/{i}.png", png.getvalue()) for i in range(2)], zipfile.ZIP_STORED)
    bad_crc = bytearray(good)
    at = bad_crc.find(b"\x89PNG")
    bad_crc[at + 40] ^= 0xFF  # the stored data no longer matches its CRC
    assert_refused(upload(client, bytes(bad_crc), "a.zip"), "digits/")
    method = bytearray(zip_of(lambda a: a.writestr("digits/0.png", png.getvalue())))
    central = method.find(b"PK\x01\x02")
    method[8:10] = method[central + 10:central + 12] = struct.pack("<H", 9)  # deflate64: not supported
    r = upload(client, bytes(method), "b.zip")
    assert r.status_code == 422, r.text


def test_a_truncated_ico_is_not_an_accepted_image(client):
    ico = io.BytesIO()
    Image.new("L", (16, 16), 5).save(ico, format="ICO")
    raw = zip_of(lambda a: [a.writestr(f"d/{i}.ico", ico.getvalue()[:40]) for i in range(2)])
    assert_refused(upload(client, raw, "c.zip"), "not a readable image")


def test_uploads_list_only_finished_uploads(hostile):
    from service import uploads
    from service.settings import Settings

    root = hostile.data / "uploads"
    (root / ".tmp-half-written").mkdir(parents=True, exist_ok=True)
    (root / ".tmp-half-written" / "meta.json").write_text('{"id": "x", "created": "z"}')
    assert all(m["id"] != "x" for m in uploads.list_all(Settings(data=hostile.data)))


def test_deflated_bomb_check_is_not_fooled_by_a_small_archive():
    assert zlib.compress(bytes(2**20), 9).__len__() < 2**20 // 500  # the premise of the tests above


def test_a_key_over_its_storage_quota_is_507_and_nothing_is_kept(client, hostile):
    x = np.zeros((10, 28, 28), np.uint8)  # 7,840 bytes stored, with labels 7,920: two fit in 20,000
    first, second = upload(client, npz(x=x, y=np.arange(10))), upload(client, npz(x=x, y=np.arange(10)))
    assert first.status_code == second.status_code == 201
    third = upload(client, npz(x=x, y=np.arange(10)))
    assert third.status_code == 507 and "max_storage_bytes" in third.json()["error"]["message"]
    assert len([p for p in (hostile.data / "uploads").iterdir() if not p.name.startswith(".")]) == 2
