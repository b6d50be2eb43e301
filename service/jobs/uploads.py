"""Uploaded training data: a zip of class folders of images, or an .npz with x (and y).

Everything is checked before anything is kept, and the normalised result (data.npz + meta.json)
is renamed into place whole: an upload is stored completely or not at all.
"""
from __future__ import annotations

import collections
import io
import json
import shutil
import stat
import tempfile
import uuid
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image, UnidentifiedImageError

from service.jobs.protocol import now
from service.settings import Settings

NOTES = {".csv", ".txt", ".md", ".json"}  # top-level files that describe an upload rather than hold images
# x key -> its labels' key: the service's own names first, then Keras' mnist.npz, then the names
# /samples wrote before it used x and y (so an older file still uploads back).
NPZ_PAIRS = {"x": "y", "x_train": "y_train", "samples": "labels"}
MAX_RATIO = 200  # compressed -> uncompressed; beyond this a zip entry is treated as a bomb


class UploadError(ValueError):
    """Refused upload data; the message names the file (or field) and the problem."""


class UploadTooLarge(UploadError):
    """An upload over the configured size."""


class UnknownUpload(LookupError):
    """No upload with that id."""


def folder(settings: Settings) -> Path:
    return settings.data / "uploads"


def store(raw: bytes, filename: str, settings: Settings) -> dict:
    """Validate, normalise and keep one upload; returns its metadata."""
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
    return _keep(x, y, classes, filename, settings)


def read(upload_id: str, settings: Settings) -> dict:
    if not upload_id.isalnum():
        raise UnknownUpload(f"unknown upload {upload_id!r}")
    try:
        return json.loads((folder(settings) / upload_id / "meta.json").read_text())
    except FileNotFoundError:
        raise UnknownUpload(f"unknown upload {upload_id!r}") from None


def path_of(upload_id: str, settings: Settings) -> Path:
    """The normalised data file of an upload (what a training job reads)."""
    read(upload_id, settings)
    return folder(settings) / upload_id / "data.npz"


def list_all(settings: Settings) -> list[dict]:
    root = folder(settings)
    if not root.is_dir():
        return []
    metas = [json.loads(p.read_text()) for p in root.glob("*/meta.json")]
    return sorted(metas, key=lambda m: m["created"], reverse=True)


def _check_pixels(count: int, pixels: int, settings: Settings, where: str) -> None:
    if count > settings.max_upload_files:
        raise UploadError(f"{where}: {count} images is over the limit of {settings.max_upload_files}")
    if pixels > settings.max_upload_pixels:
        raise UploadError(f"{where}: {pixels} pixels in all is over the limit of {settings.max_upload_pixels}")


def _from_npz(raw: bytes, filename: str, settings: Settings):
    try:
        arrays = np.load(io.BytesIO(raw), allow_pickle=False)
        keys = set(arrays.files)
        x_key = next((key for key in NPZ_PAIRS if key in keys), None)
        if x_key is None:
            raise UploadError(f"{filename}: an .npz upload needs an array 'x' (or 'x_train', or 'samples' as "
                              f"/samples wrote it before); has {sorted(keys)}")
        info = arrays.zip.getinfo(f"{x_key}.npy")
        if info.file_size > settings.max_upload_pixels * 8 + 1024:
            raise UploadError(f"{filename}: {x_key} unpacks to {info.file_size} bytes, over the pixel limit")
        x = arrays[x_key]
        y_key = NPZ_PAIRS[x_key]
        y = arrays[y_key] if y_key in keys else None
        names = arrays["label_names"] if "label_names" in keys else None
    except UploadError:
        raise
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        raise UploadError(f"{filename}: not a readable .npz ({exc})") from None
    if x.ndim not in (3, 4) or (x.ndim == 4 and x.shape[-1] not in (1, 3)) or len(x) == 0:
        raise UploadError(f"{filename}: x must be (n, h, w) or (n, h, w, c) with c 1 or 3, got {x.shape}")
    if not np.issubdtype(x.dtype, np.number):
        raise UploadError(f"{filename}: x must hold numbers, got dtype {x.dtype}")
    h, w = x.shape[1:3]
    if h * w > settings.max_image_pixels:
        raise UploadError(f"{filename}: images of {w}×{h} are over the limit of {settings.max_image_pixels} pixels")
    _check_pixels(len(x), int(np.prod(x.shape[:3])), settings, filename)
    if y is not None:
        if y.ndim != 1 or len(y) != len(x):
            raise UploadError(f"{filename}: {y.shape} labels for {len(x)} images; y must be (n,)")
        if not np.issubdtype(y.dtype, np.integer):
            raise UploadError(f"{filename}: labels y must be integers, got dtype {y.dtype}")
    x = np.asarray(x, dtype=np.float64)
    if x.min() < 0 or x.max() > 255:
        raise UploadError(f"{filename}: pixel values must lie in 0..255, got {x.min()}..{x.max()}")
    if x.max() <= 1.0:  # images in [0, 1]
        x = x * 255
    classes = None if y is None else [str(c) for c in np.unique(y)]
    if classes is not None and names is not None and names.ndim == 1 and 0 <= y.min() and y.max() < len(names):
        classes = [str(names[c]) for c in np.unique(y)]  # the service's own npz names its labels
    return np.rint(x).astype(np.uint8), (None if y is None else y.astype(np.int64)), classes


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
            data = archive.read(info)
            try:
                img = Image.open(io.BytesIO(data))
                w, h = img.size
                if w * h > settings.max_image_pixels:  # checked before decoding: no decompression bomb
                    raise UploadError(f"{p}: {w}×{h} is over the limit of {settings.max_image_pixels} pixels")
                pixels += w * h
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


def _keep(x: np.ndarray, y: np.ndarray | None, classes, filename: str, settings: Settings) -> dict:
    root = folder(settings)
    root.mkdir(parents=True, exist_ok=True)
    upload_id = uuid.uuid4().hex
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
    try:
        arrays = {"x": x} if y is None else {"x": x, "y": y}
        np.savez(tmp / "data.npz", **arrays)
        meta = {"id": upload_id, "filename": filename, "n": int(len(x)), "shape": list(x.shape[1:]),
                "classes": classes, "labelled": y is not None, "created": now()}
        (tmp / "meta.json").write_text(json.dumps(meta))
        tmp.chmod(0o755)
        tmp.rename(root / upload_id)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return meta
