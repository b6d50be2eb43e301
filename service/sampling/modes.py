"""Sampling modes: one plan function per mode behind MODES, driven by plan.run (or the batcher).

Every mode has the same signature, mode(model, n, seed, oversample, labels, start) -> Plan of
Samples, so a route, the dataset stream and the evaluator sample any mode the same way. Each says
what chose its samples (Samples.ranking, the X-Ranking header). A request without an oversample gets
the model's own (its card's `ranking`, chosen on evaluator A), else the classic 20.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from service.repository import Model
from service.sampling import plans
from service.sampling import rejection
from service.sampling.latents import latent_codes, latents
from service.sampling.plans import Plan, Runner, direct
from service.sampling.samples import Samples, SamplingError


CLASSIC_OVERSAMPLE = 20  # keras-dcgan's best 1 of 20: nice's oversample for a card without a ranking


def plain(model: Model, n: int, seed: int, oversample: int, labels: np.ndarray | None, start: int = 0) -> Plan:
    """Plan: one latent per index, then the generator."""
    z = latents(seed, start, n, model.latent_dim, model.card.latent.distribution)
    values = yield from plans.generate(model, z, labels)
    return Samples.of(model, seed, "plain", values, labels, None, n)


def nice(model: Model, n: int, seed: int, oversample: int, labels: np.ndarray | None, start: int = 0) -> Plan:
    """Plan: the best n of oversample·n candidates by discriminator score (the keras-dcgan "nice").

    Slot i's candidates are the indices i·oversample …, each carrying slot i's label; each label
    (or each cluster of a coded generator) keeps its share, best first.
    """
    # 1. oversample candidates per requested sample, each slot's candidates carrying its label.
    m = n * oversample
    cand_labels = np.repeat(labels, oversample) if labels is not None else None
    latent = model.card.latent
    z = latents(seed, start * oversample, m, latent.dim, latent.distribution)
    candidates = yield from plans.generate(model, z, cand_labels)
    # 2. score them all, 3. keep the best of each group's own candidates, best first.
    scores = yield from plans.score(model, candidates, cand_labels)
    if labels is not None:
        keep = best_per_group(scores, labels, cand_labels)
    elif latent.codes:  # a coded G: each cluster keeps its share
        codes = latent_codes(z, latent.codes, latent.distribution)
        keep = best_per_group(scores, codes[::oversample], codes)
    else:
        keep = np.argsort(-scores, kind="stable")[:n]
    out = Samples.of(model, seed, "nice", candidates[keep], labels, scores[keep], m)
    out.ranking = ranking(model, "nice", oversample)
    return out


def best_per_group(scores: np.ndarray, slot_groups: np.ndarray, cand_groups: np.ndarray) -> np.ndarray:
    """Candidate indices (len(slot_groups),): each slot gets a best-first candidate of its own group."""
    keep = np.empty(len(slot_groups), dtype=np.int64)
    for group in np.unique(slot_groups):
        slots = np.flatnonzero(slot_groups == group)
        pool = np.flatnonzero(cand_groups == group)
        keep[slots] = pool[np.argsort(-scores[pool], kind="stable")[:len(slots)]]
    return keep


def oversample_for(model: Model, mode: str, oversample: int | None) -> int:
    """The request's oversample, or the model's own for nice (its card's ranking), or the classic 20."""
    if oversample is not None:
        return oversample
    if mode == "nice" and model.card.ranking is not None:
        return model.card.ranking.oversample
    return CLASSIC_OVERSAMPLE


def ranking(model: Model, mode: str, oversample: int) -> str:
    """What picks a mode's samples, in words a header can carry (ASCII): the X-Ranking header."""
    if mode == "plain":
        return "none"
    if mode == "rejection":
        return rejection.describe(model, oversample)
    group = "label" if model.labels is not None else "cluster" if model.card.latent.codes else None
    share = f", each {group} keeping its share" if group else ""
    card = model.card.ranking
    source = "card" if card is not None and oversample == card.oversample else "request"
    return f"top by {model.card.score_name}, best 1 of {oversample}{share} (oversample from the {source})"


Mode = Callable[..., Plan]
MODES: dict[str, Mode] = {"plain": plain, "nice": nice, "rejection": rejection.rejection}


def plan(model: Model, n: int, seed: int, mode: str = "plain", oversample: int | None = None,
         labels: np.ndarray | None = None, start: int = 0) -> Plan:
    """The plan of one request: the mode's plan function, or SamplingError naming the modes."""
    if mode not in MODES:
        raise SamplingError(f"mode: unknown mode {mode!r}; known: {', '.join(MODES)}")
    return MODES[mode](model, n, seed, oversample_for(model, mode, oversample), labels, start)


def sample(model: Model, n: int, seed: int, mode: str = "plain", oversample: int | None = None,
           labels: np.ndarray | None = None, runner: Runner = direct, start: int = 0) -> Samples:
    """n samples of a model in a mode, blocking. `start` offsets the indices, so a long stream can be
    sampled in chunks (plain, nice)."""
    return plans.run(plan(model, n, seed, mode, oversample, labels, start), runner)
