"""nice: the best n of oversample·n candidates by discriminator score (keras-dcgan's nice mode).

Slot i's candidates are the latent indices i·oversample …, each carrying slot i's label. A request keeps
the best n of all of them, each label (or each cluster of a coded generator) keeping its share; a dataset
keeps, slot by slot, the best of the slot's own candidates, so its sample i depends on (seed, i) alone.
A request without an oversample gets the model's own (its card's `ranking`, chosen on evaluator A).
"""
from __future__ import annotations

import numpy as np

from service.repository import Model
from service.sampling import plans
from service.sampling.latents import draw, latent_codes
from service.sampling.modes import Draw, SamplingMode
from service.sampling.plans import Plan
from service.sampling.samples import Samples


class Nice(SamplingMode):
    name = "nice"
    help = ("the best n of oversample·n candidates by discriminator score (each label, or each cluster of a coded "
            "model, keeping its share; the X-Ranking header says how)")

    def plan(self, d: Draw) -> Plan:
        # 1. oversample candidates per requested sample, 2. score them all,
        z, cand_labels, candidates, scores = yield from scored_candidates(d)
        # 3. keep the best of each group's own candidates, best first.
        latent = d.model.card.latent
        if d.labels is not None:
            keep = best_per_group(scores, d.labels, cand_labels)
        elif latent.codes:  # a coded G: each cluster keeps its share
            codes = latent_codes(z, latent.codes, latent.distribution)
            keep = best_per_group(scores, codes[::d.oversample], codes)
        else:
            keep = np.argsort(-scores, kind="stable")[:d.n]
        return Samples.of(d.model, d.seed, self.name, candidates[keep], d.labels, scores[keep], d.n * d.oversample,
                          d.truncation)

    def plan_slots(self, d: Draw) -> Plan:
        """Slot i keeps the best of its own candidates; a coded generator's slot keeps the cluster of its first."""
        z, _, candidates, scores = yield from scored_candidates(d)
        latent = d.model.card.latent
        ranked = scores.astype(np.float64).reshape(d.n, d.oversample)  # (n, oversample)
        if latent.codes and d.labels is None:
            codes = latent_codes(z, latent.codes, latent.distribution).reshape(d.n, d.oversample)
            ranked = np.where(codes == codes[:, :1], ranked, -np.inf)
        keep = np.arange(d.n) * d.oversample + np.argmax(ranked, axis=1)
        return Samples.of(d.model, d.seed, self.name, candidates[keep], d.labels, scores[keep], d.n * d.oversample,
                          d.truncation)

    def oversample(self, model: Model, requested: int | None) -> tuple[int, str]:
        if requested is None and model.card.ranking is not None:
            return model.card.ranking.oversample, "card"
        return super().oversample(model, requested)

    def ranking(self, model: Model, oversample: int, source: str, samples: Samples | None = None) -> str:
        group = "label" if model.labels is not None else "cluster" if model.card.latent.codes else None
        share = f", each {group} keeping its share" if group else ""
        return f"top by {model.card.score_name}, best 1 of {oversample}{share} (oversample from the {source})"


def scored_candidates(d: Draw) -> Plan:
    """Plan: slot i's `oversample` candidates (indices i·oversample …, each carrying slot i's label) and
    their discriminator scores: (z, candidate labels, candidates, scores)."""
    cand_labels = np.repeat(d.labels, d.oversample) if d.labels is not None else None
    z = draw(d.model.card.latent, d.seed, d.start * d.oversample, d.n * d.oversample, d.truncation)
    candidates = yield from plans.generate(d.model, z, cand_labels)
    scores = yield from plans.score(d.model, candidates, cand_labels)
    return z, cand_labels, candidates, scores


def best_per_group(scores: np.ndarray, slot_groups: np.ndarray, cand_groups: np.ndarray) -> np.ndarray:
    """Candidate indices (len(slot_groups),): each slot gets a best-first candidate of its own group."""
    keep = np.empty(len(slot_groups), dtype=np.int64)
    for group in np.unique(slot_groups):
        slots = np.flatnonzero(slot_groups == group)
        pool = np.flatnonzero(cand_groups == group)
        keep[slots] = pool[np.argsort(-scores[pool], kind="stable")[:len(slots)]]
    return keep
