"""Sampling modes: one plan function per mode behind MODES, driven by plan.run (or the batcher).

Every mode has the same signature, mode(model, n, seed, oversample, labels, start, truncation) ->
Plan of Samples, so a route, the dataset stream and the evaluator sample any mode the same way.
`given` is the plan of latents a request brings itself (explicit z, a walk): nothing is drawn. Each
mode says what chose its samples (Samples.ranking, the X-Ranking header). A request without an
oversample gets the model's own (its card's `ranking`, chosen on evaluator A), else the classic 20.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from service.repository import Model
from service.sampling import plans
from service.sampling import filtering, rejection
from service.sampling.latents import PSI_MAX, latent_codes, latents, truncate
from service.sampling.plans import Plan, Runner, direct
from service.sampling.samples import Samples, SamplingError


CLASSIC_OVERSAMPLE = 20  # keras-dcgan's best 1 of 20: nice's oversample for a card without a ranking


def draw(model: Model, seed: int, start: int, n: int, truncation: float = 1.0) -> np.ndarray:
    """(n, dim) latents of indices start..start+n-1 of a seed, truncated by ψ."""
    latent = model.card.latent
    return truncate(latents(seed, start, n, latent.dim, latent.distribution), truncation, latent.codes)


def plain(model: Model, n: int, seed: int, oversample: int, labels: np.ndarray | None, start: int = 0,
          truncation: float = 1.0) -> Plan:
    """Plan: one latent per index, then the generator."""
    z = draw(model, seed, start, n, truncation)
    values = yield from plans.generate(model, z, labels)
    return Samples.of(model, seed, "plain", values, labels, None, n, truncation)


def given(model: Model, z: np.ndarray, labels: np.ndarray | None, seed: int | None = None,
          truncation: float = 1.0) -> Plan:
    """Plan: the generator on latents the request brings (already truncated); `seed` only describes them."""
    values = yield from plans.generate(model, z, labels)
    return Samples.of(model, seed, "plain", values, labels, None, len(z), truncation)


def scored_candidates(model: Model, n: int, seed: int, oversample: int, labels: np.ndarray | None, start: int,
                      truncation: float) -> Plan:
    """Plan: slot i's `oversample` candidates (indices i·oversample …, each carrying slot i's label) and
    their discriminator scores: (z, candidate labels, candidates, scores)."""
    cand_labels = np.repeat(labels, oversample) if labels is not None else None
    z = draw(model, seed, start * oversample, n * oversample, truncation)
    candidates = yield from plans.generate(model, z, cand_labels)
    scores = yield from plans.score(model, candidates, cand_labels)
    return z, cand_labels, candidates, scores


def nice(model: Model, n: int, seed: int, oversample: int, labels: np.ndarray | None, start: int = 0,
         truncation: float = 1.0) -> Plan:
    """Plan: the best n of oversample·n candidates by discriminator score (the keras-dcgan "nice").

    Slot i's candidates are the indices i·oversample …, each carrying slot i's label; each label
    (or each cluster of a coded generator) keeps its share, best first.
    """
    # 1. oversample candidates per requested sample, 2. score them all,
    z, cand_labels, candidates, scores = yield from scored_candidates(model, n, seed, oversample, labels, start,
                                                                      truncation)
    # 3. keep the best of each group's own candidates, best first.
    latent, m = model.card.latent, n * oversample
    if labels is not None:
        keep = best_per_group(scores, labels, cand_labels)
    elif latent.codes:  # a coded G: each cluster keeps its share
        codes = latent_codes(z, latent.codes, latent.distribution)
        keep = best_per_group(scores, codes[::oversample], codes)
    else:
        keep = np.argsort(-scores, kind="stable")[:n]
    out = Samples.of(model, seed, "nice", candidates[keep], labels, scores[keep], m, truncation)
    out.ranking = ranking(model, "nice", oversample)
    return out


def nice_by_slot(model: Model, n: int, seed: int, oversample: int, labels: np.ndarray | None, start: int = 0,
                 truncation: float = 1.0) -> Plan:
    """Plan: nice as datasets stream it, slot by slot: slot i keeps the best of its own candidates
    (i·oversample …), so sample i depends only on (seed, i). A coded generator's slot keeps the cluster
    of its first candidate, so each cluster keeps its share."""
    z, cand_labels, candidates, scores = yield from scored_candidates(model, n, seed, oversample, labels, start,
                                                                      truncation)
    latent, m = model.card.latent, n * oversample
    ranked = scores.astype(np.float64).reshape(n, oversample)  # (n, oversample)
    if latent.codes and labels is None:
        codes = latent_codes(z, latent.codes, latent.distribution).reshape(n, oversample)
        ranked = np.where(codes == codes[:, :1], ranked, -np.inf)
    keep = np.arange(n) * oversample + np.argmax(ranked, axis=1)
    return Samples.of(model, seed, "nice", candidates[keep], labels, scores[keep], m, truncation)


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
MODES: dict[str, Mode] = {"plain": plain, "nice": nice, "rejection": rejection.rejection, "filtered": filtering.filtered}
# Streams (datasets) need sample i to depend on (seed, i) alone: their nice and rejection go slot by slot.
STREAM_MODES: dict[str, Mode] = {**MODES, "nice": nice_by_slot, "rejection": rejection.by_slot}


def plan(model: Model, n: int, seed: int, mode: str = "plain", oversample: int | None = None,
         labels: np.ndarray | None = None, start: int = 0, truncation: float = 1.0,
         judge: filtering.Judge | None = None, stream: bool = False) -> Plan:
    """The plan of one request: the mode's plan function, or SamplingError naming the modes.

    `judge` is the filtered mode's classifier; `stream` picks the modes a dataset streams with."""
    modes = STREAM_MODES if stream else MODES
    if mode not in modes:
        raise SamplingError(f"mode: unknown mode {mode!r}; known: {', '.join(modes)}")
    if not 0 < truncation <= PSI_MAX:
        raise SamplingError(f"truncation: ψ must be in (0, {PSI_MAX:g}], got {truncation}")
    oversample = oversample_for(model, mode, oversample)
    if mode == "filtered":
        return filtering.filtered(model, n, seed, oversample, labels, start, truncation, judge)
    return modes[mode](model, n, seed, oversample, labels, start, truncation)


def sample(model: Model, n: int, seed: int, mode: str = "plain", oversample: int | None = None,
           labels: np.ndarray | None = None, runner: Runner = direct, start: int = 0,
           truncation: float = 1.0, judge: filtering.Judge | None = None) -> Samples:
    """n samples of a model in a mode, blocking. `start` offsets the indices, so a long stream can be
    sampled in chunks (plain, nice, filtered)."""
    return plans.run(plan(model, n, seed, mode, oversample, labels, start, truncation, judge), runner)
