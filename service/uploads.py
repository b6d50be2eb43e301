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
import math
import shutil
import tempfile
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Callable, Iterator

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
            parsed = read(archive, listing, filename, budget)
            _check_quota(parsed.size, owner, settings)  # from the headers: before a pixel is decoded
            return _keep(parsed, filename, settings, owner, listing.skipped)  # decoded as it is written
    except ArchiveError as exc:
        raise UploadError(str(exc)) from None


@dataclass
class Parsed:
    """An upload whose headers are read and checked: what it will store, and its pixels still to decode."""
    shape: tuple[int, ...]  # (n, h, w) grey or (n, h, w, 3), uint8
    labels: np.ndarray | None
    classes: list[str] | None
    pixels: Callable[[], Iterator[np.ndarray]]  # uint8 slices of `shape`, in order, decoded as they are asked for

    @property
    def size(self) -> int:
        """Bytes stored: the pixels as uint8, the labels as int64."""
        return math.prod(self.shape) + (0 if self.labels is None else 8 * len(self.labels))


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


def _from_npz(archive: zipfile.ZipFile, listing: archives.Listing, filename: str, budget: Budget) -> Parsed:
    """The images of an .npz, their labels and class names; every header checked before anything inflates."""
    data = archives.npz(archive, listing, filename, budget)
    y, names = data.labels, data.label_names
    classes = None if y is None else [str(c) for c in np.unique(y)]
    if classes is not None and names is not None and names.ndim == 1 and y.max() < len(names):
        classes = [str(names[c]) for c in np.unique(y)]  # the service's own npz names its labels
    return Parsed(data.images.stored_shape, y, classes, data.images.uint8_chunks)


def _from_folders(archive: zipfile.ZipFile, listing: archives.Listing, filename: str, budget: Budget) -> Parsed:
    """A zip with one sub-folder of images per class (perhaps inside one top-level folder): every image's header
    is read (and spent) first; the pixels are decoded when they are written."""
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

    def pixels() -> Iterator[np.ndarray]:
        for entry, _, size, _ in heads:
            where = f"{filename}/{entry.path}"
            with archives.open_image(io.BytesIO(archives.read(archive, entry, filename)), where, None) as img:
                img = archives.decode(img, where).convert("L" if grey else "RGB")
                yield np.asarray(img if size == target else img.resize(target, Image.BILINEAR), np.uint8)[None]

    shape = (len(heads), target[1], target[0]) + (() if grey else (3,))
    return Parsed(shape, np.asarray([h[1] for h in heads], dtype=np.int64), classes, pixels)


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


def _keep(parsed: Parsed, filename: str, settings: Settings, owner: str, skipped: int) -> dict:
    """Write the upload's data.npz (its pixels decoded a slice at a time, straight to disk) and meta.json into a
    temporary folder, and rename it into place whole."""
    root = folder(settings)
    root.mkdir(parents=True, exist_ok=True)
    upload_id = uuid.uuid4().hex
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
    try:
        _write(tmp / "data.npz", parsed)
        _check_quota(parsed.size, owner, settings)  # again: another upload of this key may have finished meanwhile
        meta = {"id": upload_id, "filename": filename, "n": parsed.shape[0], "shape": list(parsed.shape[1:]),
                "classes": parsed.classes, "labelled": parsed.labels is not None, "created": now(), "owner": owner,
                "bytes": parsed.size, "skipped": skipped}  # skipped: metadata entries (__MACOSX/, dot-files)
        (tmp / "meta.json").write_text(json.dumps(meta))
        tmp.chmod(0o755)
        tmp.rename(root / upload_id)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return meta


def _write(path: Path, parsed: Parsed) -> None:
    """An .npz of x (uint8) and y (int64), as np.savez writes it, with x written as its slices are decoded."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        with archive.open("x.npy", "w", force_zip64=True) as stream:
            np.lib.format.write_array_header_1_0(
                stream, {"descr": "|u1", "fortran_order": False, "shape": parsed.shape})
            written = 0
            for chunk in parsed.pixels():
                stream.write(np.ascontiguousarray(chunk, np.uint8).data.cast("B"))
                written += len(chunk)
            if written != parsed.shape[0]:
                raise RuntimeError(f"{path}: wrote {written} images of {parsed.shape[0]}")
        if parsed.labels is not None:
            with archive.open("y.npy", "w") as stream:
                np.lib.format.write_array(stream, parsed.labels, allow_pickle=False)
