"""The one reader of data files a user hands over: uploads (POST /v1/data), /translate inputs, training sources.

numpy and Pillow only. Every caller decodes under one `Budget` and so gets the same keys and the same refusals;
only the numbers differ (an upload's limits, or one /translate request's). Refusals are `ArchiveError`
(a ValueError) whose message names the file (or `file/member`) and the limit or problem; callers re-raise it
as their own type (UploadError, InputError) or let it through (training's ValueError).

What is read:
- **zip** (an .npz is one): the central directory's entries are counted before zipfile parses them (at most
  twice the image limit plus 64). Every entry is refused if its path is absolute or has a `..` part, if it
  is a symbolic link, encrypted, in a compression method zipfile cannot read, or claims a ratio over 200:1.
  Metadata is skipped and counted (logged): `__MACOSX/`, and any entry with a part starting with a dot
  (`.DS_Store`, Finder's `._x.png`, `.hidden/x.png`). Each entry is read as exactly as many bytes as it
  declares, its CRC checked; damaged data (bad CRC, bad deflate data, a size that lies) is a refusal
  naming the entry, never a crash.
- **npz**: a zip whose entries are all `.npy`. The images are the first of `x`, `x_train`, `images`, `image`,
  `samples` it holds (or its only array); the labels are that key's pair: `x`→`y`, `x_train`→`y_train`,
  `images`/`image`/`samples`→`labels`; `label_names` names the classes (the service's own npz writes it).
- **npy** (bare, or an npz member) and **IDX**: the header (shape, dtype) is checked before any data is read:
  real numbers only (bool, int, uint, float), images (n, h, w), (n, h, w, c) or (n, c, h, w) with c 1 or 3;
  count, pixels and bytes are spent from the header; the data is read and converted a slice of about 1 MB
  at a time. Pixel values: integers 0..255; floats finite, in [0, 1], [-1, 1] or 0..255 (the whole array's
  range decides); booleans 0/1.
- **labels**: (n,), integers (or whole floats), class indices in 0..max_upload_classes-1.
- **images**: PNG, JPEG, BMP, GIF, WebP, TIFF (first frame); the header's size is spent before decoding.
"""
from __future__ import annotations

from typing import BinaryIO

from service.io import arrays, zips
from service.io.arrays import IMAGE_KEYS, LABEL_KEYS, Array, Dataset, Images, idx, images_of, labels_of, npy, npz
from service.io.budget import MAX_RATIO, ArchiveError, Budget
from service.io.images import IMAGE_FORMATS, decode, grey_mode, open_image
from service.io.zips import Entry, Listing, entries, open_zip, read

__all__ = ["IMAGE_FORMATS", "IMAGE_KEYS", "LABEL_KEYS", "MAX_RATIO", "ArchiveError", "Array", "Budget", "Dataset",
           "Entry", "Images", "Listing", "decode", "entries", "grey_mode", "idx", "images_of", "kind_of",
           "labels_of", "npy", "npz", "open_image", "open_zip", "read"]


def kind_of(stream: BinaryIO) -> str:
    """"npy", "zip" (an npz too) or "image" (anything else is tried as one), from the first bytes; the stream
    is left at its start."""
    stream.seek(0)
    head = stream.read(8)
    stream.seek(0)
    if head.startswith(arrays.NPY_MAGIC):
        return "npy"
    if head.startswith(zips.MAGICS):
        return "zip"
    return "image"
