"""Acceptance slot by slot: the driver of the filtered mode and of rejection sampling in datasets.

Slot i's candidates are the latent indices i·oversample … i·oversample + oversample − 1, each
carrying slot i's label (as in nice), and the first candidate its test accepts fills the slot.
So sample i depends only on (seed, i): a dataset may start at any index, be split across workers,
or be resumed mid-way, and the answer does not change. Candidates are drawn in rounds (each slot
still empty takes its next few), sized by the acceptance seen so far; the round size changes the
cost, never the answer. A slot none of whose `oversample` candidates passes takes its best one by
the test's own measure: a stream cannot fail half-way, and the acceptance rate (accepted / drawn)
reports how often the test passed.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from service.repository import Model
from service.sampling import plans
from service.sampling.latents import latents, truncate
from service.sampling.plans import Plan
from service.sampling.samples import Samples, SamplingError

# test(values, labels, candidate indices) -> Plan of (measure (m,), accepted (m,) bool); higher measure is better
Test = Callable[[np.ndarray, np.ndarray | None, np.ndarray], Plan]


def latents_at(model: Model, seed: int, indices: np.ndarray, truncation: float) -> np.ndarray:
    """(len(indices), dim) latents of arbitrary indices of a seed, runs of consecutive ones drawn together."""
    latent = model.card.latent
    out = np.empty((len(indices), latent.dim), np.float32)
    breaks = np.flatnonzero(np.diff(indices) != 1) + 1
    for run in np.split(np.arange(len(indices)), breaks):
        if len(run):
            out[run] = latents(seed, int(indices[run[0]]), len(run), latent.dim, latent.distribution)
    return truncate(out, truncation, latent.codes)


def first_accepted(model: Model, n: int, seed: int, oversample: int, labels: np.ndarray | None, start: int,
                   truncation: float, test: Test, mode: str) -> Plan:
    """Plan: each slot's first accepted candidate (else its best), with the measure as scores."""
    if oversample < 1:
        raise SamplingError(f"oversample: at least 1 candidate per sample, got {oversample}")
    values = np.empty((n, *model.card.sample_shape), np.float32)
    measure = np.full(n, -np.inf, np.float32)
    filled = np.zeros(n, bool)
    tried = 0  # candidates each open slot has drawn so far
    drawn = accepted = 0
    while tried < oversample and not filled.all():
        # 1. a round: each open slot's next `size` candidates, in index order.
        rate = accepted / drawn if drawn else 1.0
        size = min(oversample - tried, max(1, math.ceil(0.8 / max(rate, 1e-3))) if drawn else 1)
        open_ = np.flatnonzero(~filled)  # (m,)
        slot = np.repeat(open_, size)  # (m·size,) slot of each candidate
        index = (start + slot) * oversample + tried + np.tile(np.arange(size), len(open_))
        cand_labels = None if labels is None else labels[slot]
        candidates = yield from plans.generate(model, latents_at(model, seed, index, truncation), cand_labels)
        score, ok = yield from test(candidates, cand_labels, index)
        drawn += len(index)
        # 2. per slot: the first accepted candidate of the round, else the best so far while none is.
        ok2, score2 = ok.reshape(len(open_), size), score.reshape(len(open_), size)
        hit = ok2.any(axis=1)
        first = np.argmax(ok2, axis=1)  # the first True of each row (0 where none)
        best = np.argmax(score2, axis=1)
        pick = np.where(hit, first, best)
        rows = np.arange(len(open_))
        better = hit | (score2[rows, pick] > measure[open_])
        chosen = (rows * size + pick)[better]
        values[open_[better]] = candidates[chosen]
        measure[open_[better]] = score2[rows, pick][better]
        filled[open_[hit]] = True
        # a slot counts the candidates up to its accepted one; the rest of its round is not used
        accepted += int(hit.sum())
        drawn -= int(((size - 1 - first) * hit).sum())
        tried += size
    out = Samples.of(model, seed, mode, values, labels, measure, drawn, truncation)
    out.acceptance = accepted / drawn if drawn else 1.0
    return out
