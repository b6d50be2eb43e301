"""Measures against a run's own data: distances that need no downloaded weights, each a ratio over real images.

A run holds out a fixed, seeded split of its data (training/data.py `load_split`); its samples are measured
against that held-out part, and so are as many of its training images, at the same n: a distance's `_ratio`
is the samples' over the real images', so 1 is as close as real images of that data get at that n.

- swd: the multi-scale sliced Wasserstein distance on Laplacian-pyramid patches (Karras et al. 2018, "Progressive
  growing of GANs", §5): 64 random 7×7 patches per image at every pyramid level down to 8 px, normalised by the
  held-out images' statistics, 4 × 128 random directions; the mean over levels, ×10³ as theirs. Label-free and
  feature-free.
- frechet_random, kid_random: Fréchet distance and the kernel inception distance (Bińkowski et al. 2018, cubic
  kernel, unbiased) in the features of a fixed random-initialised convolutional network (RANDOM_NET_SEED,
  built here as ONNX from numpy's seeded generator: the same weights on every machine). KID is unbiased, so
  real against real is about 0 and a ratio would divide by noise: kid_random_real is reported beside it.
- with labels (data.Split's labels): a classifier trained on the run's training split (training/classifier.py
  `train_judge`), its held-out accuracy, and in its features Fréchet distance (ratio), k-NN precision and recall
  (Kynkäänniemi et al. 2019) and, for labelled samples, label accuracy (and its ratio over the classifier's
  accuracy on held-out real images).

numpy and onnxruntime only; the classifier is trained with torch, imported when a labelled reference is built.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnxruntime as ort

SWD_SEED = 5  # the patches and directions, the same for samples and for the real baseline
RANDOM_NET_SEED = 2018
PATCH = 7
PATCHES_PER_IMAGE = 64
DIRECTIONS = 128
REPEATS = 4
MIN_LEVEL_SIDE = 8  # pyramid levels down to this side
K = 3  # neighbours for k-NN precision and recall


# --- the Laplacian pyramid and SWD -------------------------------------------------------------------------
_KERNEL = np.array([1, 4, 6, 4, 1], dtype=np.float32) / 16


def _blur(x: np.ndarray) -> np.ndarray:
    """The pyramid's 5×5 binomial blur of (n, c, h, w), separable, reflected at the edges."""
    pad = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)), mode="reflect")
    rows = sum(k * pad[:, :, i:i + x.shape[2], :] for i, k in enumerate(_KERNEL))
    return sum(k * rows[:, :, :, i:i + x.shape[3]] for i, k in enumerate(_KERNEL))


def _up(x: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Doubled by repetition and blurred, cropped to shape."""
    big = x.repeat(2, axis=2).repeat(2, axis=3)[:, :, :shape[0], :shape[1]]
    return _blur(big)


def laplacian_pyramid(x: np.ndarray) -> list[np.ndarray]:
    """Levels (n, c, h, w), (n, c, h/2, w/2), ...: band-pass details, then the coarsest blurred image."""
    levels, current = [], x.astype(np.float32)
    while min(current.shape[2:]) // 2 >= MIN_LEVEL_SIDE:
        small = _blur(current)[:, :, ::2, ::2]
        levels.append(current - _up(small, current.shape[2:]))
        current = small
    return levels + [current]


def _patches(level: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """PATCHES_PER_IMAGE random 7×7 neighbourhoods of each image: (n·p, c·49)."""
    n, c, h, w = level.shape
    size = min(PATCH, h, w)
    ys = rng.integers(0, h - size + 1, (n, PATCHES_PER_IMAGE))
    xs = rng.integers(0, w - size + 1, (n, PATCHES_PER_IMAGE))
    offsets = np.arange(size)
    rows = (ys[:, :, None] + offsets)[:, :, :, None]  # (n, p, size, 1)
    cols = (xs[:, :, None] + offsets)[:, :, None, :]  # (n, p, 1, size)
    images = np.arange(n)[:, None, None, None]
    out = level.transpose(0, 2, 3, 1)[images, rows, cols]  # (n, p, size, size, c)
    return out.reshape(n * PATCHES_PER_IMAGE, -1)


def _sliced(a: np.ndarray, b: np.ndarray, rng: np.random.Generator) -> float:
    """Sliced Wasserstein distance between two descriptor sets of equal size, averaged over the repeats."""
    out = []
    for _ in range(REPEATS):
        directions = rng.standard_normal((a.shape[1], DIRECTIONS)).astype(np.float32)
        directions /= np.linalg.norm(directions, axis=0, keepdims=True)
        pa, pb = np.sort(a @ directions, axis=0), np.sort(b @ directions, axis=0)
        out.append(float(np.abs(pa - pb).mean()))
    return float(np.mean(out))


def swd(a: np.ndarray, b: np.ndarray) -> float:
    """Multi-scale sliced Wasserstein distance (×10³) between image sets (n, c, h, w) and the reference (m, c, h, w).

    Both sets' descriptors are normalised by the reference's per-dimension mean and spread (Karras et al.
    normalise each set by its own, which hides a shift of brightness or contrast); the patches of a set and the
    directions each come from a seeded generator of their own, so a set against itself is 0.
    """
    n = min(len(a), len(b))
    out = []
    for level, (la, lb) in enumerate(zip(laplacian_pyramid(a[:n]), laplacian_pyramid(b[:n]))):
        da = _patches(la, np.random.default_rng([SWD_SEED, level]))
        db = _patches(lb, np.random.default_rng([SWD_SEED, level]))
        mean, std = db.mean(0), db.std(0) + 1e-8
        out.append(_sliced((da - mean) / std, (db - mean) / std, np.random.default_rng([SWD_SEED, 100 + level])))
    return float(np.mean(out) * 1e3)


# --- a fixed random convolutional network, as ONNX ---------------------------------------------------------
RANDOM_WIDTHS = (32, 64, 128, 128)


def random_network(channels: int) -> bytes:
    """A 4-layer 3×3 convolutional network (stride 1, then 2, 2, 2; LeakyReLU 0.2) with He-normal weights from
    numpy's seeded generator: image (n, c, h, w) -> features (n, 256), the global means of its last two layers."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(RANDOM_NET_SEED)
    nodes, weights, previous, width = [], [], "image", channels
    pooled = []
    for i, (out, stride) in enumerate(zip(RANDOM_WIDTHS, (1, 2, 2, 2))):
        w = (rng.standard_normal((out, width, 3, 3)) * np.sqrt(2 / (9 * width))).astype(np.float32)
        weights.append(numpy_helper.from_array(w, f"w{i}"))
        nodes.append(helper.make_node("Conv", [previous, f"w{i}"], [f"c{i}"], pads=[1, 1, 1, 1],
                                      strides=[stride, stride]))
        nodes.append(helper.make_node("LeakyRelu", [f"c{i}"], [f"a{i}"], alpha=0.2))
        if i >= len(RANDOM_WIDTHS) - 2:
            nodes.append(helper.make_node("GlobalAveragePool", [f"a{i}"], [f"g{i}"]))
            nodes.append(helper.make_node("Flatten", [f"g{i}"], [f"f{i}"]))
            pooled.append(f"f{i}")
        previous, width = f"a{i}", out
    nodes.append(helper.make_node("Concat", pooled, ["features"], axis=1))
    graph = helper.make_graph(
        nodes, "random_features", [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", channels, "h", "w"])],
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["n", sum(RANDOM_WIDTHS[-2:])])], weights)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8).SerializeToString()


class OnnxFeatures:
    """An ONNX network's outputs on images in chunks, one thread (the evaluator shares the cores with training)."""

    def __init__(self, model: bytes, outputs: tuple[str, ...]):
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        self.outputs = list(outputs)

    def run(self, images: np.ndarray, chunk: int = 500) -> list[np.ndarray]:
        parts = [self.session.run(self.outputs, {"image": np.ascontiguousarray(images[i:i + chunk], np.float32)})
                 for i in range(0, len(images), chunk)]
        return [np.concatenate([p[k] for p in parts]).astype(np.float64) for k in range(len(self.outputs))]


_RANDOM: dict[int, OnnxFeatures] = {}


def random_features(images: np.ndarray) -> np.ndarray:
    """The fixed random network's features (n, 256) of images (n, c, h, w)."""
    c = images.shape[1]
    if c not in _RANDOM:
        _RANDOM[c] = OnnxFeatures(random_network(c), ("features",))
    return _RANDOM[c].run(images)[0]


# --- distances -------------------------------------------------------------------------------------------
def frechet(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (n, f) and (m, f)."""
    from training.evaluate import frechet as fd  # the one the digit measures use

    return fd(a, b)


def kid(a: np.ndarray, b: np.ndarray) -> float:
    """Unbiased squared MMD with the cubic polynomial kernel (x·y/d + 1)³ (×10³), features (n, f) and (m, f)."""
    d = a.shape[1]
    kaa, kbb, kab = ((a @ a.T) / d + 1) ** 3, ((b @ b.T) / d + 1) ** 3, ((a @ b.T) / d + 1) ** 3
    n, m = len(a), len(b)
    value = ((kaa.sum() - np.trace(kaa)) / (n * (n - 1)) + (kbb.sum() - np.trace(kbb)) / (m * (m - 1))
             - 2 * kab.mean())
    return float(value * 1e3)


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
    return np.sqrt(np.clip(sq, 0, None))


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = K) -> tuple[float, float]:
    """k-NN precision (fakes inside the real manifold) and recall (reals inside the fake manifold)."""
    radius = lambda x: np.sort(_distances(x, x), axis=1)[:, min(k, len(x) - 1)]  # noqa: E731  column 0: itself
    d = _distances(fake, real)  # (n_fake, n_real)
    return float(np.mean((d <= radius(real)[None, :]).any(1))), float(np.mean((d <= radius(fake)[:, None]).any(0)))


# --- a run's reference and its measure -----------------------------------------------------------------------
@dataclass
class Reference:
    """What a run's samples are measured against: its held-out images, as many of its training images (the
    real baseline), and the feature spaces; `about` is what the card's measured_against says."""
    held_out: np.ndarray  # (m, c, h, w)
    held_out_labels: np.ndarray | None
    train: np.ndarray  # (n, c, h, w), n = min(len(training part), the evaluation's n)
    train_labels: np.ndarray | None
    judge: OnnxFeatures | None = None  # logits, features; None: no labels (or the data's own evaluators judge)
    about: dict = field(default_factory=dict)
    baseline: dict = field(default_factory=dict)

    @property
    def n(self) -> int:
        """Samples measured: as many as the real baseline's training images."""
        return len(self.train)

    def label_free(self, images: np.ndarray) -> dict:
        """SWD and the random network's Fréchet distance and KID against the held-out images."""
        held = self._held_random
        features = random_features(images)
        return {"swd": swd(images, self.held_out), "frechet_random": frechet(features, held),
                "kid_random": kid(features, held)}

    def labelled(self, images: np.ndarray, labels: np.ndarray | None) -> dict:
        """The judge's label accuracy (for labelled samples), Fréchet distance and k-NN precision and recall."""
        logits, features = self.judge.run(images)
        held = self._held_judge
        precision, recall = precision_recall(held, features)
        out = {"frechet": frechet(features, held), "precision": precision, "recall": recall}
        if labels is not None:
            out["label_accuracy"] = float(np.mean(logits.argmax(1) == labels))
        return out

    def __post_init__(self):
        self._held_random = random_features(self.held_out)
        self._held_judge = self.judge.run(self.held_out)[1] if self.judge is not None else None
        self.baseline = self.label_free(self.train)
        if self.judge is not None:
            self.baseline.update(self.labelled(self.train, self.train_labels))
            logits, _ = self.judge.run(self.held_out)
            self.about["classifier"]["held_out_accuracy"] = float(np.mean(logits.argmax(1) == self.held_out_labels))

    def measure(self, values: np.ndarray, labels: np.ndarray | None = None) -> dict:
        """The first n samples measured, each distance beside its ratio over the real baseline's."""
        images, labels = values[:self.n], None if labels is None else labels[:self.n]
        out = self.label_free(images)
        if self.judge is not None:
            out.update(self.labelled(images, labels))
            if "label_accuracy" in out:
                out["label_accuracy_ratio"] = out["label_accuracy"] / self.about["classifier"]["held_out_accuracy"]
        for key in ("swd", "frechet_random", "frechet"):
            if key in out:
                out[f"{key}_ratio"] = out[key] / max(self.baseline[key], 1e-12)
        out["kid_random_real"] = self.baseline["kid_random"]
        out["measured_n"] = len(images)
        return out
