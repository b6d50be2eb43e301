"""Data loaders on small files the tests write: npz, IDX (plain and gzipped), class folders, bad inputs."""
from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
from PIL import Image

from training import data


def write_idx(path, array: np.ndarray, compress: bool = False):
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    (gzip.open if compress else open)(path, "wb").write(raw)
    return path


def digits(n=6, size=28):
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, size, size), dtype=np.uint8), np.arange(n) % 10


def test_mnist_split_is_4000_train_1000_held_out_disjoint():
    split = data.mnist_split()
    assert split["train_x"].shape == (4000, 1, 28, 28) and split["test_x"].shape == (1000, 1, 28, 28)
    assert np.bincount(split["train_y"]).tolist() == [400] * 10
    assert np.bincount(split["test_y"]).tolist() == [100] * 10
    assert -1 <= split["train_x"].min() and split["train_x"].max() <= 1
    train = {x.tobytes() for x in split["train_x"]}
    assert not any(x.tobytes() in train for x in split["test_x"])


def test_default_is_the_training_part():
    x, y = data.load_images("default")
    assert x.shape == (4000, 1, 28, 28) and y.shape == (4000,)


def test_keras_npz(tmp_path):
    x, y = digits()
    np.savez(tmp_path / "mnist.npz", x_train=x, y_train=y, x_test=x[:2], y_test=y[:2])
    images, labels = data.load_images(str(tmp_path / "mnist.npz"))
    assert images.shape == (6, 1, 28, 28) and images.dtype == np.float32
    np.testing.assert_allclose(images[:, 0], x / 127.5 - 1, atol=1e-6)
    assert labels.tolist() == y.tolist()


def test_npz_resized_to_family_size(tmp_path):
    x, y = digits(size=14)
    np.savez(tmp_path / "small.npz", x_train=x, y_train=y)
    images, _ = data.load_images(str(tmp_path / "small.npz"), size=28)
    assert images.shape == (6, 1, 28, 28)


@pytest.mark.parametrize("compress", [False, True])
def test_idx_pair(tmp_path, compress):
    x, y = digits()
    suffix = ".gz" if compress else ""
    write_idx(tmp_path / f"train-images-idx3-ubyte{suffix}", x, compress)
    write_idx(tmp_path / f"train-labels-idx1-ubyte{suffix}", y, compress)
    images, labels = data.load_images(str(tmp_path))
    np.testing.assert_allclose(images[:, 0], x / 127.5 - 1, atol=1e-6)
    assert labels.tolist() == y.tolist()


def test_single_idx_images_file(tmp_path):
    x, _ = digits()
    images, labels = data.load_images(str(write_idx(tmp_path / "imgs-idx3-ubyte.gz", x, True)))
    assert images.shape == (6, 1, 28, 28) and labels is None


@pytest.mark.parametrize("mode,channels", [("L", 1), ("RGB", 3), ("L", 3), ("RGB", 1)])
def test_class_folders(tmp_path, mode, channels):
    rng = np.random.default_rng(0)
    for name, count in (("a", 2), ("b", 3)):
        (tmp_path / name).mkdir()
        for i in range(count):
            shape = (20, 20) if mode == "L" else (20, 20, 3)
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(tmp_path / name / f"{i}.png")
    images, labels = data.load_images(str(tmp_path), size=16, channels=channels)
    assert images.shape == (5, channels, 16, 16)
    assert labels.tolist() == [0, 0, 1, 1, 1]
    assert -1 <= images.min() and images.max() <= 1


def test_missing_path():
    with pytest.raises(ValueError, match="no such file"):
        data.load_images("/nonexistent/data")


def test_folder_without_classes(tmp_path):
    with pytest.raises(ValueError, match="no class sub-folders"):
        data.load_images(str(tmp_path))


def test_empty_class_folder(tmp_path):
    (tmp_path / "a").mkdir()
    with pytest.raises(ValueError, match=r"a: empty class folder"):
        data.load_images(str(tmp_path))


def test_non_image_file_is_named(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "notes.txt").write_text("not a picture")
    with pytest.raises(ValueError, match=r"notes\.txt: not a readable image"):
        data.load_images(str(tmp_path))


def test_unreadable_npz(tmp_path):
    (tmp_path / "bad.npz").write_bytes(b"garbage")
    with pytest.raises(ValueError, match=r"bad\.npz: not a readable \.npz"):
        data.load_images(str(tmp_path / "bad.npz"))


def test_npz_without_images(tmp_path):
    np.savez(tmp_path / "odd.npz", weights=np.zeros(3), bias=np.zeros(2))  # a single array would be taken
    with pytest.raises(ValueError, match="no image array"):
        data.load_images(str(tmp_path / "odd.npz"))


def test_npz_wrong_shape(tmp_path):
    np.savez(tmp_path / "flat.npz", x_train=np.zeros((4, 784)))
    with pytest.raises(ValueError, match=r"flat\.npz: x_train must be \(n, h, w\)"):
        data.load_images(str(tmp_path / "flat.npz"))


def test_npz_label_count_mismatch(tmp_path):
    x, y = digits()
    np.savez(tmp_path / "m.npz", x_train=x, y_train=y[:4])
    with pytest.raises(ValueError, match="4 labels for 6 images"):
        data.load_images(str(tmp_path / "m.npz"))


def test_idx_label_count_mismatch(tmp_path):
    x, y = digits()
    write_idx(tmp_path / "train-images-idx3-ubyte", x)
    write_idx(tmp_path / "train-labels-idx1-ubyte", y[:5])
    with pytest.raises(ValueError, match=r"train-labels-idx1-ubyte: 5 labels for 6 images"):
        data.load_images(str(tmp_path))


def test_idx_bad_magic(tmp_path):
    (tmp_path / "x-idx3-ubyte").write_bytes(b"\x12\x34\x56\x78" + bytes(10))
    with pytest.raises(ValueError, match="bad magic number"):
        data.load_images(str(tmp_path / "x-idx3-ubyte"))


def test_idx_truncated(tmp_path):
    x, _ = digits()
    path = write_idx(tmp_path / "t-idx3-ubyte", x)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ValueError, match=r"t-idx3-ubyte: IDX header says shape \(6, 28, 28\)"):
        data.load_images(str(path))


def test_idx_images_wrong_dimensions(tmp_path):
    path = write_idx(tmp_path / "v-idx1-ubyte", np.arange(5))
    with pytest.raises(ValueError, match="must have 3 dimensions"):
        data.load_images(str(path))


def test_batches_are_a_function_of_the_rng_state():
    x, y = np.arange(100, dtype=np.float32)[:, None], np.arange(100)
    a = data.batches(x, y, 8, np.random.default_rng(3))
    b = data.batches(x, y, 8, np.random.default_rng(3))
    for _ in range(3):
        (xa, ya), (xb, yb) = next(a), next(b)
        assert (xa == xb).all() and (ya == yb).all()


def test_float_images_in_0_1_are_read_as_pixels_not_as_0_255(tmp_path):
    x = np.random.default_rng(0).random((4, 28, 28)).astype(np.float32)
    np.savez(tmp_path / "unit.npz", x=x)
    images, _ = data.load_images(str(tmp_path / "unit.npz"))
    np.testing.assert_allclose(images[:, 0], np.rint(x * 255) / 127.5 - 1, atol=1e-6)


def test_labels_must_be_class_indices(tmp_path):
    x, _ = digits(3)
    np.savez(tmp_path / "neg.npz", x_train=x, y_train=np.array([0, -1, 2]))
    with pytest.raises(ValueError, match=r"neg\.npz: labels y_train must be class indices in 0\.\.999 "
                                         r"\(max_upload_classes\); got -1\.\.2"):
        data.load_images(str(tmp_path / "neg.npz"))


@pytest.fixture
def small_pixel_limit(monkeypatch):
    """Training reads under the upload limits, from the settings: here 3,000 pixels in all."""
    from service.settings import get_settings

    monkeypatch.setenv("GANSERVE_MAX_UPLOAD_PIXELS", "3000")
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


def test_a_source_is_read_under_the_upload_limits_counting_what_is_kept(tmp_path, small_pixel_limit):
    for name in "ab":
        (tmp_path / "folder" / name).mkdir(parents=True)
        for i in range(3):  # 6 images of 40×40 (9,600 pixels) kept at 16×16 (1,536)
            Image.new("L", (40, 40), 30 * i).save(tmp_path / "folder" / name / f"{i}.png")
    images, labels = data.load_images(str(tmp_path / "folder"), size=16)
    assert images.shape == (6, 1, 16, 16) and labels.tolist() == [0, 0, 0, 1, 1, 1]
    np.savez(tmp_path / "big.npz", x=np.zeros((6, 40, 40), np.uint8))  # an array is held whole: 9,600 pixels
    with pytest.raises(ValueError, match=r"big\.npz: 9600 pixels in all is over the limit of 3000 "
                                         r"\(max_upload_pixels\)"):
        data.load_images(str(tmp_path / "big.npz"))
