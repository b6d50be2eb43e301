"""filtered (GaFi, Sánchez et al. 2023): keep a labelled sample only if a classifier agrees.

A candidate of label l is accepted when the classifier gives l a probability of at least the
threshold; slot i takes its first accepted candidate (slotwise.first_accepted), so sample i
depends only on (seed, i). The classifier is an ONNX file (input `image` (n, c, h, w) in the
generator's value range, first output logits (n, classes)); the service reads it and never the code
that trained it. Its path and the threshold are settings (GANSERVE_FILTER_CLASSIFIER,
GANSERVE_FILTER_THRESHOLD); by default the project's digit classifier, trained on the 4,000
training digits and never on the held-out ones.
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from service.repository import Model
from service.repository.sessions import Network
from service.sampling.modes import Draw, SamplingMode
from service.sampling.plans import Call, Plan
from service.sampling.samples import Samples, SamplingError
from service.sampling.slotwise import first_accepted


class Filtered(SamplingMode):
    name = "filtered"
    help = ("labelled image models the service's classifier knows: each sample is the first of its candidates the "
            "classifier assigns to its requested label with confidence ≥ threshold (GaFi)")
    needs_discriminator = False
    loads = True

    def plan(self, d: Draw) -> Plan:
        return filtered(d.model, d.n, d.seed, d.oversample, d.labels, d.start, d.truncation, d.aid)

    def check(self, model: Model) -> None:
        if model.labels is None or not model.card.images:
            raise SamplingError(f"mode: filtered keeps image samples a classifier assigns to their requested label; "
                                f"model {model.name!r} makes {model.card.kind}"
                                f"{'' if model.labels is not None else ' and is unconditional'}")

    def prepare(self, model: Model, threshold: float | None, settings) -> "Classifier":
        """The configured classifier (read once per file version), checked against the model before a stream
        starts: a refusal half-way would be a broken body."""
        chosen = classifier(settings.filter_classifier, settings.filter_threshold if threshold is None else threshold)
        check(model, chosen)
        return chosen

    def ranking(self, model: Model, oversample: int, source: str, samples: Samples | None = None) -> str:
        accepted = "" if samples is None or samples.acceptance is None else f", accepted {samples.acceptance:.3f}"
        return (f"first candidate the classifier gives its label with confidence >= threshold, budget {oversample} "
                f"per sample{accepted}")


@dataclass(frozen=True)
class Classifier:
    """A loaded classifier and the confidence a sample's requested label needs."""
    session: Network
    labels: list[str]  # class names, in the order of the logits
    sample_shape: list[int]
    threshold: float
    path: str


@functools.lru_cache(maxsize=4)
def _load(path: str, mtime: float) -> tuple[Network, list[str], list[int]]:
    """The session, class names and sample shape of a classifier file, once per file version (not per
    threshold: loading times the session, half a second)."""
    session = Network(path, threads=1)
    classes = session.get_outputs()[0].shape[-1]
    card = Path(path).with_name("card.json")
    names = json.loads(card.read_text()).get("labels") if card.exists() else None
    labels = [str(x) for x in names] if names else [str(i) for i in range(classes)]
    shape = [d if isinstance(d, int) else None for d in session.get_inputs()[0].shape[1:]]
    return session, labels, shape


def classifier(path: Path | str, threshold: float) -> Classifier:
    """The classifier at path (loaded once per file version), or SamplingError saying what is missing."""
    if not 0 < threshold <= 1:
        raise SamplingError(f"threshold: a probability in (0, 1], got {threshold}")
    path = Path(path)
    if not path.is_file():
        raise SamplingError(f"mode: filtered needs a classifier, and there is none at {path} "
                            "(GANSERVE_FILTER_CLASSIFIER)")
    return Classifier(*_load(str(path.resolve()), path.stat().st_mtime), float(threshold), str(path))


def check(model: Model, chosen: Classifier) -> None:
    """Refuse a model the classifier cannot judge: unlabelled, other labels, or another sample shape."""
    if model.labels is None:
        raise SamplingError(f"mode: filtered keeps samples a classifier assigns to their requested label; "
                            f"model {model.name!r} is unconditional")
    if list(model.labels) != chosen.labels or any(
            want is not None and want != have for want, have in zip(chosen.sample_shape, model.card.sample_shape)):
        raise SamplingError(f"mode: the filter's classifier judges {chosen.sample_shape} samples labelled "
                            f"{', '.join(chosen.labels)}; model {model.name!r} makes {model.card.sample_shape} "
                            f"labelled {', '.join(model.labels)}")


def confidence(chosen: Classifier, model: Model, values: np.ndarray, labels: np.ndarray) -> Plan:
    """Plan: the classifier's probability of each sample's own label, (n,)."""
    logits = (yield Call(chosen.session, {"image": values}, model.name, "classifier")).astype(np.float64)
    logits -= logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    probs /= probs.sum(axis=1, keepdims=True)
    return probs[np.arange(len(values)), labels].astype(np.float32)


def filtered(model: Model, n: int, seed: int, oversample: int, labels: np.ndarray | None, start: int = 0,
             truncation: float = 1.0, chosen: Classifier | None = None) -> Plan:
    """Plan: slot i's first candidate the classifier gives its label with confidence ≥ the threshold.

    Scores are that confidence. At most `oversample` candidates a slot; a slot none passes keeps
    its most confident one.
    """
    if chosen is None:
        raise SamplingError("mode: filtered needs a classifier (GANSERVE_FILTER_CLASSIFIER)")
    check(model, chosen)

    def test(values, cand_labels, index) -> Plan:
        conf = yield from confidence(chosen, model, values, cand_labels)
        return conf, conf >= chosen.threshold

    return (yield from first_accepted(model, n, seed, oversample, labels, start, truncation, test, Filtered.name))
