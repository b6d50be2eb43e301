"""Uploaded training data: a zip of class folders of images, or an .npz with x (and y).

Everything is checked before anything is kept, and the normalised result (data.npz, with its metadata as a
row of the store) is kept whole: an upload is stored completely or not at all.
"""
from __future__ import annotations

import collections
import io
import zlib
import stat
import os
import tempfile
import uuid
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image, UnidentifiedImageError

from service.jobs.protocol import now
from service.settings import Settings
from service.store import QuotaExceeded, Store
from service.store import UnknownUpload as UnknownUpload  # raised by read(), as before

IMAGE_FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF")  # decoders that refuse truncated files
NOTES = {".csv", ".txt", ".md", ".json"}  # top-level files that describe an upload rather than hold images
# x key -> its labels' key: the service's own names first, then Keras' mnist.npz, then the names
# /samples wrote before it used x and y (so an older file still uploads back).
NPZ_PAIRS = {"x": "y", "x_train": "y_train", "samples": "labels"}  # images -> labels; samples: /samples' old npz
MAX_RATIO = 200  # compressed -> uncompressed; beyond this a zip entry is treated as a bomb


class UploadError(ValueError):
    """Refused upload data; the message names the file (or field) and the problem."""


class UploadTooLarge(UploadError):
    """An upload over the configured size."""


class OverQuota(UploadError):
    """The key's uploads already hold their storage quota (507)."""


def store(raw: bytes, filename: str, settings: Settings, db: Store, owner: str = "anonymous") -> dict:
    """Validate, normalise and keep one upload; returns its metadata. `owner` (a hash of the API key, or the
    client's address) is charged the stored bytes against `max_storage_bytes`."""
    if len(raw) > settings.max_upload_bytes:
        raise UploadTooLarge(f"file: {len(raw)} bytes is over the limit of {settings.max_upload_bytes}")
    if not zipfile.is_zipfile(io.BytesIO(raw)):
        raise UploadError(f"file: {filename!r} is neither a zip of class folders nor an .npz")
    with zipfile.ZipFile(io.BytesIO(raw)) as archive:
        names = [i.filename for i in archive.infolist() if not i.is_dir()]
        if names and all(n.endswith(".npy") for n in names):
            x, y, classes = _from_npz(raw, filename, settings)
        else:
            x, y, classes = _from_zip(archive, settings)
    return _keep(x, y, classes, filename, settings, db, owner)


def read(upload_id: str, db: Store, owner: str | None = None) -> dict:
    return db.uploads.get(upload_id, owner)


def path_of(upload_id: str, db: Store) -> Path:
    """The normalised data file of an upload (what a training job reads), on this machine."""
    return db.uploads.path(upload_id)


def _check_pixels(count: int, pixels: int, settings: Settings, where: str) -> None:
    if count > settings.max_upload_files:
        raise UploadError(f"{where}: {count} images is over the limit of {settings.max_upload_files}")
    if pixels > settings.max_upload_pixels:
        raise UploadError(f"{where}: {pixels} pixels in all is over the limit of {settings.max_upload_pixels}")


NUMBER_KINDS = "uif"  # unsigned, signed, float: no complex, bool, strings, objects or records


def _npy_header(archive: zipfile.ZipFile, member: str, filename: str) -> tuple[tuple, np.dtype]:
    """(shape, dtype) of one .npy member, read from its header alone: nothing is decompressed beyond it."""
    try:
        with archive.open(member) as f:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read(f, max_header_size=10_000)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError) as exc:
        raise UploadError(f"{filename}: {member} is not a readable .npy array ({type(exc).__name__})") from None
    return shape, dtype


def _from_npz(raw: bytes, filename: str, settings: Settings):
    """x (n, h, w[, c]) and y (n,) from an .npz, every header checked against the budgets before any array
    is inflated (an npz member can declare, or inflate to, far more than the upload's size)."""
    with zipfile.ZipFile(io.BytesIO(raw)) as archive:
        members = {PurePosixPath(i.filename).stem: i for i in archive.infolist()}
        x_key = next((k for k in NPZ_PAIRS if k in members), None)
        if x_key is None:
            raise UploadError(f"{filename}: an .npz upload needs an array 'x' (or 'x_train', 'samples'); "
                              f"has {sorted(members)}")
        y_key = NPZ_PAIRS[x_key] if NPZ_PAIRS[x_key] in members else None
        x_shape, x_dtype = _npy_header(archive, members[x_key].filename, filename)
        if x_dtype.kind not in NUMBER_KINDS:
            raise UploadError(f"{filename}: {x_key} must hold real numbers, got dtype {x_dtype}")
        if len(x_shape) not in (3, 4) or (len(x_shape) == 4 and x_shape[-1] not in (1, 3)) or x_shape[0] == 0:
            raise UploadError(f"{filename}: {x_key} must be (n, h, w) or (n, h, w, c) with c 1 or 3, got {x_shape}")
        h, w = x_shape[1:3]
        if h * w > settings.max_image_pixels:
            raise UploadError(f"{filename}: images of {w}×{h} are over the limit of {settings.max_image_pixels} pixels")
        _check_pixels(x_shape[0], int(np.prod(x_shape, dtype=np.int64)), settings, filename)
        inflated = int(np.prod(x_shape, dtype=np.int64)) * x_dtype.itemsize
        if inflated > settings.max_upload_inflated_bytes:
            raise UploadError(f"{filename}: {x_key} inflates to {inflated} bytes, over the limit of "
                              f"{settings.max_upload_inflated_bytes} (max_upload_inflated_bytes)")
        if y_key is not None:
            y_shape, y_dtype = _npy_header(archive, members[y_key].filename, filename)
            if len(y_shape) != 1 or y_shape[0] != x_shape[0]:
                raise UploadError(f"{filename}: {y_shape} labels for {x_shape[0]} images; {y_key} must be (n,)")
            if y_dtype.kind not in "ui":
                raise UploadError(f"{filename}: labels {y_key} must be integers, got dtype {y_dtype}")
        try:  # the headers are within budget: now inflate, allowing no pickles
            x = np.load(archive.open(members[x_key].filename), allow_pickle=False)
            y = None if y_key is None else np.load(archive.open(members[y_key].filename), allow_pickle=False)
            names = None
            if "label_names" in members and members["label_names"].file_size < 2**20:
                names = np.load(archive.open(members["label_names"].filename), allow_pickle=False)
        except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError) as exc:
            raise UploadError(f"{filename}: not a readable .npz ({type(exc).__name__})") from None
    if x_dtype.kind == "f" and not np.isfinite(x).all():
        raise UploadError(f"{filename}: {x_key} holds NaN or infinite values")
    low, high = x.min(), x.max()  # in x's own dtype: no float64 copy of a large upload
    if low < 0 or high > 255:
        raise UploadError(f"{filename}: pixel values must lie in 0..255, got {low}..{high}")
    scale = 255.0 if x.dtype.kind == "f" and high <= 1.0 else 1.0  # images in [0, 1]
    pixels = np.empty(x.shape, np.uint8)
    for i in range(0, len(x), 4096):  # converted a slice at a time, so memory stays near the upload's own
        pixels[i:i + 4096] = np.rint(x[i:i + 4096].astype(np.float32) * scale)
    classes = None if y is None else [str(c) for c in np.unique(y)]
    if classes is not None and names is not None and names.ndim == 1 and 0 <= y.min() and y.max() < len(names):
        classes = [str(names[c]) for c in np.unique(y)]  # the service's own npz names its labels
    return pixels, (None if y is None else y.astype(np.int64)), classes


def _from_zip(archive: zipfile.ZipFile, settings: Settings):
    entries = [i for i in archive.infolist() if not i.is_dir()]
    _check_pixels(len(entries), 0, settings, "file")
    total = sum(i.file_size for i in entries)
    if total > settings.max_upload_bytes * MAX_RATIO or total > settings.max_upload_pixels * 4:
        raise UploadError(f"file: the zip unpacks to {total} bytes, over the limit (a zip bomb?)")
    files: list[tuple[str, zipfile.ZipInfo]] = []
    for info in entries:
        path = PurePosixPath(info.filename.replace("\\", "/"))
        if path.is_absolute() or ".." in path.parts or ":" in path.parts[0]:
            raise UploadError(f"{info.filename}: a zip entry may not escape the upload's folder")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise UploadError(f"{info.filename}: symbolic links are not accepted")
        if info.flag_bits & 0x1:
            raise UploadError(f"{info.filename}: encrypted entries are not accepted")
        if info.compress_size and info.file_size / info.compress_size > MAX_RATIO:
            raise UploadError(f"{info.filename}: compression ratio over {MAX_RATIO}:1 (a zip bomb?)")
        if path.name.startswith(".") or "__MACOSX" in path.parts:
            continue
        files.append((str(path), info))
    # One sub-folder per class, perhaps inside a single top-level folder.
    tops = {PurePosixPath(p).parts[0] for p, _ in files}
    strip = 1 if len(tops) == 1 and all(len(PurePosixPath(p).parts) == 3 for p, _ in files) else 0
    by_class: dict[str, list] = collections.defaultdict(list)
    for p, info in files:
        parts = PurePosixPath(p).parts[strip:]
        if len(parts) == 1 and PurePosixPath(p).suffix.lower() in NOTES:
            continue  # an index or readme beside the class folders
        if len(parts) != 2:
            raise UploadError(f"{p}: expected class-folder/image-file (one sub-folder of images per class)")
        by_class[parts[0]].append((p, info))
    if not by_class:
        raise UploadError("file: the zip holds no images (expected one sub-folder of images per class)")
    images, labels, sizes, modes = [], [], [], set()
    pixels = 0
    classes = sorted(by_class)
    for label, name in enumerate(classes):
        for p, info in sorted(by_class[name]):
            try:
                data = archive.read(info)
            except (zipfile.BadZipFile, zlib.error, NotImplementedError, EOFError, RuntimeError) as exc:
                raise UploadError(f"{p}: a damaged or unsupported zip entry ({type(exc).__name__})") from None
            try:
                img = Image.open(io.BytesIO(data), formats=IMAGE_FORMATS)
                w, h = img.size
                if w * h > settings.max_image_pixels:  # checked before decoding: no decompression bomb
                    raise UploadError(f"{p}: {w}×{h} is over the limit of {settings.max_image_pixels} pixels")
                pixels += w * h * len(img.getbands())  # every channel is stored
                _check_pixels(len(images) + 1, pixels, settings, p)
                img.load()
            except UploadError:
                raise
            except Image.DecompressionBombError:
                raise UploadError(f"{p}: its header claims more pixels than the limit of "
                                  f"{settings.max_image_pixels} (a decompression bomb?)") from None
            except (UnidentifiedImageError, OSError, ValueError) as exc:
                raise UploadError(f"{p}: not a readable image ({type(exc).__name__})") from None
            modes.add("L" if img.mode in ("1", "L", "LA", "I", "I;16", "F") else "RGB")
            images.append((p, img))
            sizes.append((w, h))
            labels.append(label)
    mode = "RGB" if "RGB" in modes else "L"
    target = collections.Counter(sizes).most_common(1)[0][0]
    out = []
    for (p, img), (w, h) in zip(images, sizes):
        if (w, h) != target:
            if abs(w / h - target[0] / target[1]) > 0.01:
                raise UploadError(f"{p}: {w}×{h} cannot be resized to the upload's common size "
                                  f"{target[0]}×{target[1]} without distortion")
            img = img.resize(target, Image.BILINEAR)
        out.append(np.asarray(img.convert(mode), dtype=np.uint8))
    return np.stack(out), np.asarray(labels, dtype=np.int64), classes


def _keep(x: np.ndarray, y: np.ndarray | None, classes, filename: str, settings: Settings, db: Store,
          owner: str) -> dict:
    """The store checks the owner's quota and records the upload in one transaction (concurrent uploads cannot
    all pass the check); the data file moves into the store's keeping, or nothing is kept."""
    size = x.nbytes + (0 if y is None else y.nbytes)
    settings.data.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=".upload-", suffix=".npz", dir=settings.data)
    os.close(handle)
    try:
        np.savez(tmp, **({"x": x} if y is None else {"x": x, "y": y}))
        meta = {"id": uuid.uuid4().hex, "filename": filename, "n": int(len(x)), "shape": list(x.shape[1:]),
                "classes": classes, "labelled": y is not None, "created": now(), "owner": owner, "bytes": size}
        return db.uploads.add(meta, Path(tmp), quota=settings.max_storage_bytes)
    except QuotaExceeded as exc:
        raise OverQuota(f"file: storing {size} more bytes would pass this key's quota of "
                        f"{settings.max_storage_bytes} bytes (max_storage_bytes; {exc.used} in use); "
                        "delete uploads or ask for a larger quota") from None
    finally:
        Path(tmp).unlink(missing_ok=True)
