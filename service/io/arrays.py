"""NumPy arrays (.npy, an .npz's members, IDX files): headers checked first, data read in bounded chunks."""
from __future__ import annotations

import contextlib
import io
import math
import struct
import zipfile
from dataclasses import dataclass
from typing import BinaryIO, Callable, ContextManager, Iterator

import numpy as np

from service.io import zips
from service.io.budget import ArchiveError, Budget

IMAGE_KEYS = ("x", "x_train", "images", "image", "samples")  # an .npz's images: the first of these it holds
LABEL_KEYS = {"x": "y", "x_train": "y_train", "images": "labels", "image": "labels", "samples": "labels"}
NAMES_KEY = "label_names"  # class names, indexed by label (the service's own npz writes them)
MAX_NAMES_BYTES = 1 << 20
CHUNK_BYTES = 1 << 20  # converted a slice of about this many bytes at a time, whatever the array's size
MAX_HEADER = 10_000  # bytes of an .npy header (numpy's own default limit)
IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
GREY = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R 601-2 luma, as Pillow's convert("L")
NPY_MAGIC = b"\x93NUMPY"

Opener = Callable[[], ContextManager[BinaryIO]]


@dataclass
class Array:
    """An array whose header has been read, and whose data is read (again) from a stream `open` yields."""
    where: str  # the file messages name
    name: str  # what messages call the array: its npz key, or "images"
    shape: tuple[int, ...]
    dtype: np.dtype
    fortran: bool
    open: Opener  # a context manager yielding a stream at the array's first data byte
    header: str = "the .npy"  # what declared the shape, for messages

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize

    def check_held(self, held: int) -> None:
        """Refuse an array whose container declares a size other than its header's, before reading it."""
        if held != self.nbytes:
            raise ArchiveError(f"{self.where}: {self.header} header says shape {self.shape} for {self.name} "
                               f"({self.nbytes} bytes) but the file holds {held} bytes")

    def chunks(self, rows: int) -> Iterator[np.ndarray]:
        """The array `rows` leading rows at a time (a fortran-ordered one is read whole: within the budget)."""
        row_bytes = math.prod(self.shape[1:]) * self.dtype.itemsize
        with self.open() as stream:
            if self.fortran:
                data = self._exactly(stream, self.nbytes, 0)
                whole = np.frombuffer(data, self.dtype).reshape(self.shape[::-1]).T
                for start in range(0, self.shape[0], rows):
                    yield whole[start:start + rows]
            else:
                for start in range(0, self.shape[0], rows):
                    count = min(rows, self.shape[0] - start)
                    data = self._exactly(stream, count * row_bytes, start * row_bytes)
                    yield np.frombuffer(data, self.dtype).reshape((count, *self.shape[1:]))
            if stream.read(1):  # reading to the end also checks a zip member's CRC
                raise ArchiveError(f"{self.where}: {self.name} holds more than {self.header} header says "
                                   f"({self.nbytes} bytes)")

    def read(self) -> np.ndarray:
        """The whole array (for small ones: labels, names)."""
        parts = list(self.chunks(max(1, self.shape[0] if self.shape else 1)))
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def _exactly(self, stream: BinaryIO, count: int, done: int) -> bytes:
        data = stream.read(count)
        if len(data) < count:
            raise ArchiveError(f"{self.where}: {self.header} header says shape {self.shape} for {self.name} "
                               f"({self.nbytes} bytes) but the file holds {done + len(data)} bytes")
        return data


@dataclass
class Images:
    """An array of n images h×w with c channels (1 or 3), stored (n, h, w), (n, h, w, c) or (n, c, h, w)."""
    array: Array
    n: int
    height: int
    width: int
    channels: int
    channels_first: bool

    def unit(self) -> Iterator[np.ndarray]:
        """float32 (k, h, w, c) in [0, 1], a slice at a time: integers are 0..255; floats [0, 1], [-1, 1] or
        0..255 (the whole array's range decides, found in a first pass); booleans 0 or 1."""
        shift, span = self._rule()
        for chunk in self._chunks():
            if chunk.dtype.kind in "iu":
                self._check_integers(chunk)
                chunk = chunk.astype(np.float32) / 255.0
            else:
                chunk = chunk.astype(np.float32)
                if shift:
                    chunk = (chunk + np.float32(shift)) / np.float32(span)
                elif span != 1:
                    chunk = chunk / np.float32(span)
            yield self._channels_last(chunk)

    @property
    def stored_shape(self) -> tuple[int, ...]:
        """The shape of the images as uint8: (n, h, w) grey or (n, h, w, 3)."""
        return (self.n, self.height, self.width) + (() if self.channels == 1 else (3,))

    def uint8_chunks(self) -> Iterator[np.ndarray]:
        """The images as uint8 (k, h, w) grey or (k, h, w, 3), a slice at a time, by the same rule as unit()."""
        shift, span = self._rule()
        for chunk in self._chunks():
            if chunk.dtype.kind in "iu":
                self._check_integers(chunk)
                pixels = chunk.astype(np.uint8)
            elif chunk.dtype.kind == "b":
                pixels = chunk.astype(np.uint8) * np.uint8(255)
            else:  # within [0, 255] by the rule, so the cast is exact
                pixels = np.rint((chunk.astype(np.float32) + np.float32(shift)) * np.float32(255 / span))
                pixels = pixels.astype(np.uint8)
            pixels = self._channels_last(pixels)
            yield pixels[..., 0] if self.channels == 1 else pixels

    def uint8(self) -> np.ndarray:
        """All the images as uint8 (n, h, w) or (n, h, w, 3)."""
        out = np.empty(self.stored_shape, np.uint8)
        start = 0
        for chunk in self.uint8_chunks():
            out[start:start + len(chunk)] = chunk
            start += len(chunk)
        return out

    def _chunks(self) -> Iterator[np.ndarray]:
        """Slices of about CHUNK_BYTES, counted as float32 (what most conversions make) or wider."""
        row = self.height * self.width * self.channels * max(self.array.dtype.itemsize, 4)
        return self.array.chunks(max(1, CHUNK_BYTES // row))

    def _channels_last(self, chunk: np.ndarray) -> np.ndarray:
        """(k, h, w), (k, c, h, w) or (k, h, w, c) -> (k, h, w, c)."""
        if chunk.ndim == 3:
            return chunk[..., None]
        return chunk.transpose(0, 2, 3, 1) if self.channels_first else chunk

    def _rule(self) -> tuple[float, float]:
        """(shift, span): a pixel's value in [0, 1] is (x + shift) / span."""
        kind = self.array.dtype.kind
        if kind == "b":
            return 0.0, 1.0
        if kind in "iu":
            return 0.0, 255.0
        low, high = math.inf, -math.inf
        for chunk in self._chunks():
            if not np.isfinite(chunk).all():
                raise ArchiveError(f"{self.array.where}: {self.array.name} holds NaN or infinite values")
            low, high = min(low, float(chunk.min())), max(high, float(chunk.max()))
        if low >= 0 and high <= 1:
            return 0.0, 1.0
        if low >= -1 and high <= 1:
            return 1.0, 2.0
        if low >= 0 and high <= 255:
            return 0.0, 255.0
        raise ArchiveError(f"{self.array.where}: pixels must lie in 0..255 (integers) or in [0, 1], [-1, 1] or "
                           f"0..255 (floats); {self.array.name} holds {low:g}..{high:g}")

    def _check_integers(self, chunk: np.ndarray) -> None:
        low, high = chunk.min(), chunk.max()
        if low < 0 or high > 255:
            raise ArchiveError(f"{self.array.where}: pixels must lie in 0..255 (integers) or in [0, 1], [-1, 1] or "
                               f"0..255 (floats); {self.array.name} holds {low}..{high}")


@dataclass
class Dataset:
    """What an .npz holds: its images, and their labels and class names where it has them."""
    images: Images
    labels: np.ndarray | None
    label_names: np.ndarray | None


def images_of(array: Array, budget: Budget) -> Images:
    """An array checked as images (real numbers, a layout of images) and spent on the budget from its header."""
    where, shape = array.where, array.shape
    if array.dtype.hasobject or array.dtype.kind not in "biuf":
        raise ArchiveError(f"{where}: {array.name} must be real numbers, got dtype {array.dtype}")
    if len(shape) == 3:
        n, height, width, channels, first = *shape, 1, False
    elif len(shape) == 4 and shape[1] in (1, 3):
        n, channels, height, width, first = *shape, True
    elif len(shape) == 4 and shape[3] in (1, 3):
        n, height, width, channels, first = *shape, False
    else:
        n = 0
    if n == 0 or 0 in shape:
        raise ArchiveError(f"{where}: {array.name} must be (n, h, w), (n, h, w, c) or (n, c, h, w) with c 1 or 3 "
                           f"and n > 0, got shape {shape}")
    budget.spend(n, height, width, channels, where)
    budget.spend_bytes(array.nbytes, where)
    return Images(array, n, height, width, channels, first)


def labels_of(array: Array, n: int, budget: Budget) -> np.ndarray:
    """Labels (n,) int64: class indices in 0..max_classes-1, checked from the header before they are read."""
    where, shape = array.where, array.shape
    if len(shape) != 1 or shape[0] != n:
        count = shape[0] if len(shape) == 1 else list(shape)
        raise ArchiveError(f"{where}: {count} labels for {n} images; {array.name} must be (n,)")
    if array.dtype.kind not in "uif":
        raise ArchiveError(f"{where}: labels {array.name} must be integers, got dtype {array.dtype}")
    budget.spend_bytes(array.nbytes, where)
    labels = array.read()
    if labels.dtype.kind == "f" and not (np.isfinite(labels).all() and (labels == np.round(labels)).all()):
        raise ArchiveError(f"{where}: labels {array.name} must be whole numbers")
    low, high = labels.min(), labels.max()
    if low < 0 or high >= budget.max_classes:
        raise ArchiveError(f"{where}: labels {array.name} must be class indices in 0..{budget.max_classes - 1} "
                           f"({budget.name('max_classes')}); got {_number(low)}..{_number(high)}")
    return labels.astype(np.int64)


def npy(stream: BinaryIO, where: str, budget: Budget) -> Images:
    """A bare .npy file of images (a seekable stream, read from its start)."""
    stream.seek(0)
    shape, fortran, dtype = _npy_header(stream, where)
    start = stream.tell()
    held = stream.seek(0, io.SEEK_END) - start

    @contextlib.contextmanager
    def at_data():
        stream.seek(start)
        yield stream

    images = images_of(Array(where, "images", shape, dtype, fortran, at_data), budget)
    images.array.check_held(held)
    return images


def npz(archive: zipfile.ZipFile, listing: zips.Listing, where: str, budget: Budget, labels: bool = True) -> Dataset:
    """An .npz's images (the first of IMAGE_KEYS it holds, or its only array), their labels (the images key's
    pair in LABEL_KEYS) and class names; every header is checked against the budget before anything inflates."""
    members = {e.path[:-4]: e for e in listing.entries}
    key = next((k for k in IMAGE_KEYS if k in members), None)
    if key is None and len(members) == 1:
        key = next(iter(members))
    if key is None:
        raise ArchiveError(f"{where}: no image array; expected one of {', '.join(map(repr, IMAGE_KEYS))} "
                           f"(or a single array), found {sorted(members)}")
    array, held = _member(archive, members[key], key, where)
    images = images_of(array, budget)
    array.check_held(held)  # after the budget: a header declaring too much names the limit it passes
    y = names = None
    label_key = LABEL_KEYS.get(key)
    if labels and label_key in members:
        array, held = _member(archive, members[label_key], label_key, where)
        y = labels_of(array, images.n, budget)
        entry = members.get(NAMES_KEY)
        if entry is not None and entry.size <= MAX_NAMES_BYTES:
            budget.spend_bytes(entry.size, where)
            try:
                names = np.load(io.BytesIO(zips.read(archive, entry, where)), allow_pickle=False)
            except (ValueError, OSError, EOFError, SyntaxError):
                raise ArchiveError(f"{where}: {NAMES_KEY} is not a readable .npy array") from None
    return Dataset(images, y, names)


def idx(opener: Opener, where: str, name: str = "images") -> Array:
    """An IDX file (MNIST's own format; `opener` yields it, gunzipped where it was gzipped), header read."""
    with opener() as stream:
        head = stream.read(4)
        if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in IDX_TYPES:
            raise ArchiveError(f"{where}: not an IDX file (bad magic number)")
        dims = stream.read(4 * head[3])
        if head[3] == 0 or len(dims) < 4 * head[3]:
            raise ArchiveError(f"{where}: truncated IDX header")
    shape, length = struct.unpack(f">{head[3]}I", dims), 4 + 4 * head[3]

    @contextlib.contextmanager
    def at_data():
        with opener() as data:
            data.read(length)
            yield data

    return Array(where, name, shape, np.dtype(IDX_TYPES[head[2]]), False, at_data, header="IDX")


def _npy_header(stream: BinaryIO, where: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, fortran order, dtype) of the .npy at the stream's position, read from its header alone."""
    try:
        version = np.lib.format.read_magic(stream)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read(stream, max_header_size=MAX_HEADER)
    except (ValueError, OSError, EOFError, SyntaxError, TypeError) as exc:
        raise ArchiveError(f"{where}: not a readable .npy array ({type(exc).__name__})") from None
    return tuple(int(d) for d in shape), bool(fortran), dtype


def _member(archive: zipfile.ZipFile, entry: zips.Entry, key: str, where: str) -> tuple[Array, int]:
    """An npz member as an Array (its header read now, its data from a fresh stream each time), and the data bytes
    the member declares (its size less its header's)."""
    with zips.open_entry(archive, entry, where) as stream:
        shape, fortran, dtype = _npy_header(stream, f"{where}: {key}")
        held = entry.size - stream.tell()

    @contextlib.contextmanager
    def at_data():
        with zips.open_entry(archive, entry, where) as stream:
            _npy_header(stream, f"{where}: {key}")
            yield stream

    return Array(where, key, shape, dtype, fortran, at_data), held


def _number(value) -> str:
    """A label as a user wrote it: 2**62 in full, not as 4.6e+18."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"
