"""The one archive reader on files the tests make with numpy, zipfile and Pillow: keys, pixel rules, layouts,
the budget spent from headers before anything inflates, zip refusals, damage, and bounded decoding."""
from __future__ import annotations

import contextlib
import gzip
import io
import stat
import struct
import tracemalloc
import zipfile

import numpy as np
import pytest
from PIL import Image

from service import io as archives
from service.io import ArchiveError, Budget
from service.settings import Settings

OPEN: list[contextlib.ExitStack] = []


@pytest.fixture(autouse=True)
def close_archives():
    yield
    while OPEN:
        OPEN.pop().close()


def budget(**limits) -> Budget:
    return Budget.for_uploads(Settings(**limits))


def npz_bytes(compressed: bool = False, **arrays) -> bytes:
    buffer = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buffer, **arrays)
    return buffer.getvalue()


def zip_bytes(entries: dict, method: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A zip of name (or ZipInfo) -> bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def png(size=(8, 8), mode="L", value=100) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, value).save(buffer, format="PNG")
    return buffer.getvalue()


def npy_member(shape, descr="|u1", payload: int = 0) -> bytes:
    """.npy bytes whose header declares shape and whose data is `payload` zero bytes (perhaps not enough)."""
    header = repr({"descr": descr, "fortran_order": False, "shape": tuple(shape)}).encode()
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + bytes(payload)


def read_npz(raw: bytes, spent: Budget | None = None, labels: bool = True) -> archives.Dataset:
    """An npz's dataset; its archive is left open (the images are read from it lazily) until the test ends."""
    spent = spent or budget()
    OPEN.append(stack := contextlib.ExitStack())
    archive = stack.enter_context(archives.open_zip(io.BytesIO(raw), "f.npz", spent))
    return archives.npz(archive, archives.entries(archive, "f.npz"), "f.npz", spent, labels=labels)


def refused(call, *words) -> str:
    with pytest.raises(ArchiveError) as caught:
        call()
    message = str(caught.value)
    assert all(w in message for w in words), message
    return message


# --- Keys ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("x_key, y_key", list(archives.LABEL_KEYS.items()))
def test_the_images_are_the_first_image_key_and_the_labels_its_pair(x_key, y_key):
    x = np.arange(3 * 4 * 5, dtype=np.uint8).reshape(3, 4, 5)
    data = read_npz(npz_bytes(**{x_key: x, y_key: np.array([2, 0, 1]), "other": np.zeros(2)}))
    np.testing.assert_array_equal(data.images.uint8(), x)
    assert data.labels.tolist() == [2, 0, 1] and data.labels.dtype == np.int64


def test_the_first_image_key_wins_and_takes_its_own_labels():
    x, train = np.zeros((2, 4, 4), np.uint8), np.full((3, 4, 4), 7, np.uint8)
    data = read_npz(npz_bytes(x_train=train, y_train=np.array([1, 1, 1]), x=x, y=np.array([0, 0])))
    assert data.images.n == 2 and data.labels.tolist() == [0, 0]


def test_a_single_array_of_any_name_is_the_images():
    x = np.full((2, 4, 4), 9, np.uint8)
    raw = io.BytesIO()
    np.savez(raw, x)  # np.savez names it arr_0
    data = read_npz(raw.getvalue())
    np.testing.assert_array_equal(data.images.uint8(), x)
    assert data.labels is None


def test_an_npz_without_images_names_the_keys_it_takes():
    refused(lambda: read_npz(npz_bytes(weights=np.zeros(3), bias=np.zeros(2))),
            "f.npz: no image array", "'x', 'x_train', 'images', 'image', 'samples'", "['bias', 'weights']")


def test_label_names_name_the_classes():
    data = read_npz(npz_bytes(x=np.zeros((2, 4, 4), np.uint8), y=np.array([1, 0]), label_names=np.array(["a", "b"])))
    assert data.label_names.tolist() == ["a", "b"]


# --- Pixel values and layouts ------------------------------------------------------------------------------

GREY = np.array([[[0, 51], [204, 255]]], np.uint8)  # (1, 2, 2)


@pytest.mark.parametrize("x", [
    GREY, GREY.astype(np.int16), GREY.astype(">u2"), GREY / 255.0, (GREY / 127.5 - 1).astype(np.float32),
    GREY.astype(np.float64),
])
def test_integers_0_255_and_floats_in_0_1_or_minus_1_1_or_0_255_are_the_same_pixels(x):
    images = read_npz(npz_bytes(x=x)).images
    np.testing.assert_array_equal(images.uint8(), GREY)
    np.testing.assert_allclose(np.concatenate(list(images.unit()))[..., 0], GREY / 255.0, atol=1e-6)


def test_booleans_are_black_and_white():
    np.testing.assert_array_equal(read_npz(npz_bytes(x=GREY > 100)).images.uint8(), (GREY > 100) * 255)


@pytest.mark.parametrize("x, words", [
    (np.array([[[0, 256]]], np.int32), ["f.npz: pixels must lie in 0..255", "x holds 0..256"]),
    (np.array([[[-2.0, 0.5]]]), ["pixels must lie in", "x holds -2..0.5"]),
    (np.array([[[np.nan, 0.5]]]), ["f.npz: x holds NaN or infinite values"]),
    (np.ones((1, 2, 2), np.complex64), ["f.npz: x must be real numbers, got dtype complex64"]),
    (np.array([[["a", "b"]]]), ["x must be real numbers"]),
])
def test_values_that_are_not_pixels_are_refused(x, words):
    refused(lambda: read_npz(npz_bytes(x=x)).images.uint8(), *words)


@pytest.mark.parametrize("layout", [lambda g: g, lambda g: g[..., None], lambda g: g[:, None]])
def test_grey_layouts_are_the_same_images(layout):
    x = np.random.default_rng(0).integers(0, 256, (3, 5, 6), dtype=np.uint8)
    images = read_npz(npz_bytes(x=layout(x))).images
    assert (images.n, images.height, images.width, images.channels) == (3, 5, 6, 1)
    np.testing.assert_array_equal(images.uint8(), x)


def test_colour_channels_first_or_last_are_the_same_images():
    x = np.random.default_rng(1).integers(0, 256, (3, 5, 6, 3), dtype=np.uint8)
    np.testing.assert_array_equal(read_npz(npz_bytes(x=x)).images.uint8(), x)
    np.testing.assert_array_equal(read_npz(npz_bytes(x=x.transpose(0, 3, 1, 2))).images.uint8(), x)


@pytest.mark.parametrize("shape", [(5, 8), (4, 784), (2, 4, 4, 2), (0, 4, 4), (2, 0, 4), (1, 2, 3, 4, 5)])
def test_arrays_that_are_not_images_are_refused_naming_the_shape(shape):
    refused(lambda: read_npz(npz_bytes(x=np.zeros(shape, np.uint8))), "f.npz: x must be (n, h, w)", str(shape))


def test_a_fortran_ordered_array_reads_as_the_same_images():
    x = np.asfortranarray(np.random.default_rng(2).integers(0, 256, (4, 5, 6), dtype=np.uint8))
    data = read_npz(npz_bytes(x=x))
    assert data.images.array.fortran
    np.testing.assert_array_equal(data.images.uint8(), x)


def test_a_bare_npy_is_read_from_its_stream():
    x = np.random.default_rng(3).random((3, 4, 4)).astype(np.float32)
    buffer = io.BytesIO()
    np.save(buffer, x)
    images = archives.npy(buffer, "x.npy", budget())
    np.testing.assert_allclose(np.concatenate(list(images.unit()))[..., 0], x)
    truncated = io.BytesIO(buffer.getvalue()[:-10])
    refused(lambda: archives.npy(truncated, "x.npy", budget()), "x.npy: the .npy header says shape (3, 4, 4)",
            "(192 bytes) but the file holds 182 bytes")


# --- The budget, spent from headers -----------------------------------------------------------------------

@pytest.mark.parametrize("shape, descr, limits, words", [
    ((100, 8, 8), "|u1", {"max_upload_files": 99}, ["f.npz: 100 images is over the limit of 99 (max_upload_files)"]),
    ((1, 2000, 2000), "|u1", {}, ["f.npz: 2000×2000 images are over the limit of 1048576 pixels (max_image_pixels)"]),
    ((100, 100, 100), "|u1", {"max_upload_pixels": 999_999}, ["1000000 pixels in all", "(max_upload_pixels)"]),
    ((10, 316, 316), "<f8", {"max_upload_inflated_bytes": 4_000_000}, ["inflates to 7988480 bytes",
                                                                        "(max_upload_inflated_bytes)"]),
    ((10**6, 1000, 1000), "<f8", {}, ["images is over the limit"]),
])
def test_an_array_header_is_spent_before_anything_inflates(shape, descr, limits, words):
    raw = zip_bytes({"x.npy": npy_member(shape, descr)})  # a header, and no data at all
    refused(lambda: read_npz(raw, budget(**limits)), *words)


def test_a_member_holding_less_than_its_header_says_is_refused_before_reading():
    raw = zip_bytes({"x.npy": npy_member((4, 8, 8), payload=100)})
    refused(lambda: read_npz(raw), "f.npz: the .npy header says shape (4, 8, 8) for x (256 bytes)",
            "the file holds 100 bytes")


def test_labels_are_checked_from_their_header_before_they_are_read():
    raw = zip_bytes({"x.npy": npy_member((4, 8, 8), payload=256), "y.npy": npy_member((2**24,), "<i8")})
    refused(lambda: read_npz(raw), "f.npz: 16777216 labels for 4 images; y must be (n,)")


@pytest.mark.parametrize("y, words", [
    (np.array([0, -5]), ["f.npz: labels y must be class indices in 0..999 (max_upload_classes); got -5..0"]),
    (np.array([0, 2**62]), ["got 0..4611686018427387904"]),
    (np.array([0.0, 1.5]), ["f.npz: labels y must be whole numbers"]),
    (np.array(["a", "b"]), ["f.npz: labels y must be integers"]),
])
def test_labels_must_be_class_indices(y, words):
    refused(lambda: read_npz(npz_bytes(x=np.zeros((2, 4, 4), np.uint8), y=y)), *words)


def test_whole_float_labels_are_class_indices():
    assert read_npz(npz_bytes(x=np.zeros((2, 4, 4), np.uint8), y=np.array([3.0, 1.0]))).labels.tolist() == [3, 1]


# --- Zip entries ------------------------------------------------------------------------------------------

def listing(raw: bytes, spent: Budget | None = None) -> archives.Listing:
    with archives.open_zip(io.BytesIO(raw), "in.zip", spent or budget()) as archive:
        return archives.entries(archive, "in.zip")


def link(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


def encrypted(raw: bytes) -> bytes:
    """The zip with its (first) entry marked encrypted in both its headers (zipfile writes no encryption)."""
    raw = bytearray(raw)
    central = raw.find(b"PK\x01\x02")
    raw[6] |= 0x1
    raw[central + 8] |= 0x1
    return bytes(raw)


@pytest.mark.parametrize("entries, words", [
    ({"a/1.png": png(), "../x.png": png()}, ["in.zip/../x.png: a zip entry may not escape"]),
    ({"a/../../x.png": png()}, ["in.zip/a/../../x.png", "escape"]),
    ({"/etc/x.png": png()}, ["in.zip//etc/x.png", "escape"]),
    ({"C:/x.png": png()}, ["in.zip/C:/x.png", "escape"]),
    ({"..\\x.png": png()}, ["escape"]),
    ({link("a/x.png"): b"/etc/passwd"}, ["in.zip/a/x.png: symbolic links are not accepted"]),
    ({"a/x.png": bytes(20_000_000)}, ["in.zip/a/x.png: compression ratio over 200:1"]),
])
def test_entries_that_escape_link_hide_behind_a_password_or_bomb_are_refused(entries, words):
    refused(lambda: listing(zip_bytes(entries)), *words)


def test_an_encrypted_entry_is_refused_naming_it():
    refused(lambda: listing(encrypted(zip_bytes({"a/x.png": png()}))), "in.zip/a/x.png: encrypted entries are not")


def test_an_unsupported_compression_method_is_refused_naming_the_entry():
    raw = bytearray(zip_bytes({"a/x.png": png()}))
    central = raw.find(b"PK\x01\x02")
    raw[8:10] = raw[central + 10:central + 12] = struct.pack("<H", 9)  # deflate64
    refused(lambda: listing(bytes(raw)), "in.zip/a/x.png: compression method 9 is not supported")


def test_metadata_entries_are_skipped_and_counted():
    found = listing(zip_bytes({"a/x.png": png(), "__MACOSX/a/._x.png": b"apple", "a/.DS_Store": b"finder",
                               ".hidden/y.png": png(), "a/._x.png": b"apple"}))
    assert [e.path for e in found.entries] == ["a/x.png"] and found.skipped == 4


def test_a_zip_listing_more_entries_than_the_limit_is_refused_before_zipfile_parses_them():
    raw = zip_bytes({f"{i}.png": b"" for i in range(100)}, zipfile.ZIP_STORED)
    refused(lambda: listing(raw, budget(max_upload_files=10)), "in.zip: the zip lists over 84 entries",
            "max_upload_files")
    assert len(listing(raw, budget(max_upload_files=18)).entries) == 100  # 2 × 18 + 64


def damage(kind: str) -> bytes:
    """A zip of a.png and b.png, one of them damaged as `kind` says."""
    raw = bytearray(zip_bytes({"a.png": png(value=3), "b.png": png(value=9)},
                              zipfile.ZIP_STORED if kind == "crc" else zipfile.ZIP_DEFLATED))
    info = zipfile.ZipFile(io.BytesIO(bytes(raw))).getinfo("b.png")
    data = info.header_offset + 30 + len("b.png")
    central = raw.find(b"PK\x01\x02", raw.find(b"PK\x01\x02") + 1)  # b.png's central header
    if kind == "crc":
        raw[data + 40] ^= 0xFF
    elif kind == "deflate":
        for i in range(data, data + info.compress_size):
            raw[i] ^= 0x5A
    else:  # the size the headers declare lies, one way or the other
        lie = info.file_size + (100 if kind == "longer" else -10)
        raw[central + 24:central + 28] = raw[info.header_offset + 22:info.header_offset + 26] = struct.pack("<I", lie)
    return bytes(raw)


@pytest.mark.parametrize("kind", ["crc", "deflate", "longer", "shorter"])
def test_damaged_entries_are_refused_naming_them(kind):
    raw = damage(kind)
    with archives.open_zip(io.BytesIO(raw), "in.zip", budget()) as archive:
        entries = {e.path: e for e in archives.entries(archive, "in.zip").entries}
        assert archives.read(archive, entries["a.png"], "in.zip") == png(value=3)
        refused(lambda: archives.read(archive, entries["b.png"], "in.zip"), "in.zip/b.png: ")


def test_a_file_that_is_not_a_zip_is_refused():
    refused(lambda: listing(b"PK\x03\x04 and then nothing of a zip"), "in.zip: not a readable .npz or zip")


# --- Images -----------------------------------------------------------------------------------------------

def bomb_png(width: int, height: int) -> bytes:
    def chunk(kind, data):
        import zlib
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    head = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", head) + chunk(b"IEND", b"")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF"])
def test_every_accepted_image_format_decodes(fmt):
    buffer = io.BytesIO()
    Image.new("L", (6, 4), 120).save(buffer, format=fmt)
    img = archives.decode(archives.open_image(buffer, "a", budget()), "a")
    assert img.size == (6, 4)


def test_an_image_header_is_spent_before_its_pixels_are_decoded():
    spent = budget()
    refused(lambda: archives.open_image(io.BytesIO(bomb_png(5000, 5000)), "bomb.png", spent),
            "bomb.png: 5000×5000 images are over the limit of 1048576 pixels (max_image_pixels)")
    refused(lambda: archives.open_image(io.BytesIO(bomb_png(100_000, 100_000)), "bomb.png", spent),
            "bomb.png: its header claims more pixels than the limit")
    img = archives.open_image(io.BytesIO(png((30, 20), "RGB")), "c.png", spent)
    assert (spent.images, spent.pixels) == (1, 30 * 20 * 3)
    refused(lambda: archives.decode(archives.open_image(io.BytesIO(png()[:-30]), "t.png", spent), "t.png"),
            "t.png: not a readable image")
    img.close()


def test_an_ico_is_not_an_accepted_image():
    buffer = io.BytesIO()
    Image.new("L", (16, 16)).save(buffer, format="ICO")
    refused(lambda: archives.open_image(buffer, "x.ico", budget()), "x.ico: not a readable image")


# --- IDX ----------------------------------------------------------------------------------------------------

def test_an_idx_file_that_gunzips_to_more_than_its_header_is_refused_after_its_declared_bytes():
    header = struct.pack(">BBBB3I", 0, 0, 0x08, 3, 2, 4, 4)
    path = io.BytesIO(gzip.compress(header + bytes(32) + bytes(50_000_000)))  # 50 MB of zeros past the header

    def opener():
        path.seek(0)
        return gzip.open(path, "rb")

    array = archives.idx(opener, "x-idx3-ubyte.gz")
    tracemalloc.start()
    refused(lambda: archives.images_of(array, budget()).uint8(), "x-idx3-ubyte.gz: images holds more than IDX header")
    assert tracemalloc.get_traced_memory()[1] < 4 * 2**20
    tracemalloc.stop()


# --- Bounded decoding -------------------------------------------------------------------------------------------

def test_a_large_float_array_is_decoded_a_slice_at_a_time():
    """64 MB of float32 (256 × 256 × 256) deflated: converting it never holds more than a few 4 MB slices."""
    x = np.zeros((256, 256, 256), np.float32)
    x[:, 100:140, 100:140] = np.random.default_rng(4).random((256, 40, 40), dtype=np.float32)
    raw = npz_bytes(compressed=True, x=x)
    tracemalloc.start()
    slices = sum(len(chunk) for chunk in read_npz(raw).images.uint8_chunks())
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert slices == 256 and peak < 20 * 2**20, peak  # np.load alone would hold 64 MB, and its conversion more


# --- The same refusals wherever the reader is used ------------------------------------------------------------

@pytest.mark.parametrize("raw, words", [
    (npz_bytes(x=np.full((2, 4, 4), np.nan)), "f.npz: x holds NaN or infinite values"),
    (zip_bytes({"x.npy": npy_member((2, 4, 4), payload=32), "../y.npy": npy_member((2,))}),
     "f.npz/../y.npy: a zip entry may not escape"),
    (npz_bytes(x=np.zeros((2, 4, 4), np.uint8), y=np.array([0, 2**62])), "f.npz: labels y must be class indices"),
    (npz_bytes(weights=np.zeros(3), bias=np.zeros(2)), "f.npz: no image array"),
])
def test_uploads_translate_and_training_refuse_a_file_with_the_same_message(raw, words, tmp_path):
    from service import uploads
    from service.sampling import images
    from training import data

    with pytest.raises(uploads.UploadError) as upload:
        uploads.store(raw, "f.npz", Settings(data=tmp_path))
    (tmp_path / "f.npz").write_bytes(raw)
    with pytest.raises(ValueError) as training:
        data.load_npz(tmp_path / "f.npz")
    messages = {str(upload.value), str(training.value).replace(str(tmp_path) + "/", "")}
    if "labels" not in words:  # /translate reads no labels
        with pytest.raises(images.InputError) as translate:
            list(images.decode(io.BytesIO(raw), "f.npz", Budget.for_translate(Settings())))
        messages.add(str(translate.value))
    assert len(messages) == 1 and words in messages.pop(), messages


def test_each_caller_names_its_own_setting_for_the_same_limit(tmp_path):
    from service import uploads
    from service.sampling import images

    raw = zip_bytes({"x.npy": npy_member((10**6, 1000, 1000), "<f8")})  # a header, no data
    with pytest.raises(uploads.UploadError, match=r"^f.npz: 1000000 images is over the limit of 70000 "
                                                   r"\(max_upload_files\)$"):
        uploads.store(raw, "f.npz", Settings(data=tmp_path))
    with pytest.raises(images.InputError, match=r"^f.npz: 1000000 images is over the limit of 1024 \(max_n\)$"):
        list(images.decode(io.BytesIO(raw), "f.npz", Budget.for_translate(Settings())))
