"""Uploaded training data: a zip of class folders of images, or an .npz with x (and y).

Read by the one archive reader (service/io: its keys and refusals are documented there) under the upload
budget. What will be stored (uint8 pixels and int64 labels) is known from the headers, so the key's quota is
checked before a pixel is decoded. The normalised result (data.npz + meta.json) is renamed into place whole:
an upload is stored completely or not at all.
"""
from __future__ import annotations

import collections
import io
import json
import shutil
import tempfile
import uuid
import zipfile
from pathlib import Path, PurePosixPath
from typing import BinaryIO

import numpy as np
from PIL import Image

from service import io as archives
from service.io import ArchiveError, Budget
from service.jobs.protocol import is_id, now
from service.settings import Settings

NOTES = {".csv", ".txt", ".md", ".json"}  # top-level files that describe an upload rather than hold images


class UploadError(ValueError):
    """Refused upload data; the message names the file (or field) and the problem."""


class UploadTooLarge(UploadError):
    """An upload over the configured size."""


class OverQuota(UploadError):
    """The key's uploads already hold their storage quota (507)."""


class UnknownUpload(LookupError):
    """No upload with that id."""


def folder(settings: Settings) -> Path:
    return settings.data / "uploads"


def store(source: bytes | BinaryIO, filename: str, settings: Settings, owner: str = "anonymous") -> dict:
    """Validate, normalise and keep one upload (bytes, or a seekable file); returns its metadata. `owner` (a hash
    of the API key, or the client's address) is charged the stored bytes against `max_storage_bytes`."""
    stream = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
    size = stream.seek(0, io.SEEK_END)
    if size > settings.max_upload_bytes:
        raise UploadTooLarge(f"file: {size} bytes is over the limit of {settings.max_upload_bytes} (max_upload_bytes)")
    budget = Budget.for_uploads(settings)
    try:
        if archives.kind_of(stream) != "zip":
            raise UploadError(f"file: {filename!r} is neither a zip of class folders nor an .npz")
        with archives.open_zip(stream, filename, budget) as archive:
            listing = archives.entries(archive, filename)
            read = _from_npz if listing.is_npz() else _from_folders
            x, y, classes = read(archive, listing, filename, budget, settings, owner)
    except ArchiveError as exc:
        raise UploadError(str(exc)) from None
    return _keep(x, y, classes, filename, settings, owner, skipped=listing.skipped)


def read(upload_id: str, settings: Settings) -> dict:
    if not is_id(upload_id):
        raise UnknownUpload(f"unknown upload {upload_id[:40]!r}")
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
    # Only finished uploads: a temporary folder being written (.tmp-*) is not one.
    metas = [json.loads(p.read_text()) for p in root.glob("*/meta.json") if is_id(p.parent.name)]
    return sorted(metas, key=lambda m: m["created"], reverse=True)


def _from_npz(archive: zipfile.ZipFile, listing: archives.Listing, filename: str, budget: Budget,
              settings: Settings, owner: str):
    """x (n, h, w[, 3]) uint8, y (n,) and class names from an .npz; the quota checked from its headers."""
    data = archives.npz(archive, listing, filename, budget)
    images, y = data.images, data.labels
    _check_quota(images.n * images.height * images.width * images.channels + (0 if y is None else 8 * images.n),
                 owner, settings)
    pixels = images.uint8()  # a slice at a time: memory stays near the stored size, whatever the dtype sent
    classes = None if y is None else [str(c) for c in np.unique(y)]
    names = data.label_names
    if classes is not None and names is not None and names.ndim == 1 and y.max() < len(names):
        classes = [str(names[c]) for c in np.unique(y)]  # the service's own npz names its labels
    return pixels, y, classes


def _from_folders(archive: zipfile.ZipFile, listing: archives.Listing, filename: str, budget: Budget,
                  settings: Settings, owner: str):
    """x (n, h, w[, 3]) uint8 and y (n,) from a zip with one sub-folder of images per class (perhaps inside one
    top-level folder). Every header is read (and spent) first, then the quota checked, then the pixels decoded."""
    files = listing.entries
    budget.check_count(len(files), filename)
    budget.spend_bytes(sum(e.size for e in files), filename)
    tops = {PurePosixPath(e.path).parts[0] for e in files}
    strip = 1 if len(tops) == 1 and all(len(PurePosixPath(e.path).parts) == 3 for e in files) else 0
    by_class: dict[str, list[archives.Entry]] = collections.defaultdict(list)
    for entry in files:
        parts = PurePosixPath(entry.path).parts[strip:]
        if len(parts) == 1 and PurePosixPath(entry.path).suffix.lower() in NOTES:
            continue  # an index or readme beside the class folders
        if len(parts) != 2:
            raise UploadError(f"{filename}/{entry.path}: expected class-folder/image-file (one sub-folder of images "
                              "per class)")
        by_class[parts[0]].append(entry)
    if not by_class:
        raise UploadError(f"{filename}: the zip holds no images (expected one sub-folder of images per class)")
    budget.check_classes(len(by_class), filename)
    classes = sorted(by_class)
    heads = []  # (entry, label, (w, h), grey)
    for label, name in enumerate(classes):
        for entry in sorted(by_class[name], key=lambda e: e.path):
            where = f"{filename}/{entry.path}"
            with archives.open_image(io.BytesIO(archives.read(archive, entry, filename)), where, budget) as img:
                heads.append((entry, label, img.size, archives.grey_mode(img)))
    grey = all(h[3] for h in heads)
    target = collections.Counter(h[2] for h in heads).most_common(1)[0][0]
    for entry, _, (w, h), _ in heads:
        if (w, h) != target and abs(w / h - target[0] / target[1]) > 0.01:
            raise UploadError(f"{filename}/{entry.path}: {w}×{h} cannot be resized to the upload's common size "
                              f"{target[0]}×{target[1]} without distortion")
    channels = 1 if grey else 3
    _check_quota(len(heads) * (target[0] * target[1] * channels + 8), owner, settings)
    pixels = np.empty((len(heads), target[1], target[0]) + (() if grey else (3,)), np.uint8)
    for i, (entry, _, size, _) in enumerate(heads):
        where = f"{filename}/{entry.path}"
        with archives.open_image(io.BytesIO(archives.read(archive, entry, filename)), where, None) as img:
            img = archives.decode(img, where).convert("L" if grey else "RGB")
            pixels[i] = np.asarray(img if size == target else img.resize(target, Image.BILINEAR), dtype=np.uint8)
    return pixels, np.asarray([h[1] for h in heads], dtype=np.int64), classes


def stored_bytes(owner: str, settings: Settings) -> int:
    """What an owner's uploads hold on disk."""
    return sum(meta.get("bytes", 0) for meta in list_all(settings) if meta.get("owner") == owner)


def _check_quota(size: int, owner: str, settings: Settings) -> None:
    """Refuse (507) storing `size` more bytes past the owner's quota."""
    used = stored_bytes(owner, settings)
    if used + size > settings.max_storage_bytes:
        raise OverQuota(f"file: storing {size} more bytes would pass this key's quota of "
                        f"{settings.max_storage_bytes} bytes (max_storage_bytes; {used} in use); "
                        "delete uploads or ask for a larger quota")


def _keep(x: np.ndarray, y: np.ndarray | None, classes, filename: str, settings: Settings, owner: str,
          skipped: int = 0) -> dict:
    size = x.nbytes + (0 if y is None else y.nbytes)
    _check_quota(size, owner, settings)  # again: another upload of the same key may have finished meanwhile
    root = folder(settings)
    root.mkdir(parents=True, exist_ok=True)
    upload_id = uuid.uuid4().hex
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
    try:
        arrays = {"x": x} if y is None else {"x": x, "y": y}
        np.savez(tmp / "data.npz", **arrays)
        meta = {"id": upload_id, "filename": filename, "n": int(len(x)), "shape": list(x.shape[1:]),
                "classes": classes, "labelled": y is not None, "created": now(), "owner": owner, "bytes": size,
                "skipped": skipped}  # metadata entries (__MACOSX/, dot-files) left out
        (tmp / "meta.json").write_text(json.dumps(meta))
        tmp.chmod(0o755)
        tmp.rename(root / upload_id)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return meta
