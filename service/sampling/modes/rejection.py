"""rejection: discriminator rejection sampling (Azadi et al. 2019): calibration and the accept/reject plan."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from service.repository import Model
from service.sampling import plans
from service.sampling.latents import bits, latents, truncate, uniforms
from service.sampling.modes import Draw, SamplingMode
from service.sampling.plans import Plan, Runner, direct
from service.sampling.samples import Samples, SamplingError
from service.sampling.slotwise import first_accepted

CALIBRATION_N = 2048  # generated samples whose discriminator logits calibrate rejection sampling
CALIBRATION_SEED = 20190101  # fixed: a model's calibration is the same in every process
ACCEPT_STREAM = 1 << 32  # Philox key offset of the acceptance uniforms, apart from every latent stream


@dataclass(frozen=True)
class Calibration:
    """Discriminator rejection sampling's constants (Azadi et al. 2019), one per label (or one)."""
    max_logit: np.ndarray  # D̃*_M: the highest logit of the calibration draw, per label
    gamma: np.ndarray  # shifts F so that 5 % of the calibration draw has p ≥ ½, per label
    acceptance: np.ndarray  # mean acceptance probability over the calibration draw, per label

    def accept_probability(self, logits: np.ndarray, label: int = 0) -> np.ndarray:
        """p(x) = σ(F(x)), F = D̃ − D̃*_M − log(1 − exp(D̃ − D̃*_M − ε)) − γ."""
        return _sigmoid(_f_hat(logits, self.max_logit[label]) - self.gamma[label])


# (name, version, folder) -> Calibration. No lock: two requests that race compute the same numbers.
_calibrations: dict[tuple[str, int, str], Calibration] = {}


def calibration(model: Model, runner: Runner = direct) -> Calibration:
    """The model's rejection calibration: from its card if it has one, else from a fixed draw, once."""
    return plans.run(calibrating(model), runner)


def calibrating(model: Model, percentile: float = 95.0) -> Plan:
    """Plan of calibration().

    The draw is the model's own generated samples under a fixed seed and a stream no request
    uses, so the constants are the same in every process and never depend on request traffic
    (Azadi et al. update D̃*_M as they go; fixing it keeps the same request the same bytes).
    A conditional model is calibrated per label, as its logits differ by label. A card may carry
    its own constants: a `rejection` object of max_logit and gamma lists.
    """
    key = (model.name, model.version, str(model.path))
    if key in _calibrations:
        return _calibrations[key]
    if model.discriminator is None:
        raise SamplingError(f"mode: model {model.name!r} has no discriminator; use mode 'plain'")
    k = 1 if model.labels is None else len(model.labels)
    labels = None if model.labels is None else np.arange(CALIBRATION_N, dtype=np.int64) % k
    z = latents(CALIBRATION_SEED, 0, CALIBRATION_N, model.latent_dim, model.card.latent.distribution,
                stream=ACCEPT_STREAM - 1)
    values = yield from plans.generate(model, z, labels)
    logits = (yield from plans.score(model, values, labels)).astype(np.float64)
    per_label = [logits] if labels is None else [logits[labels == i] for i in range(k)]
    card = model.card.rejection or {}
    max_logit = np.asarray(card.get("max_logit", [x.max() for x in per_label]), np.float64)
    gamma = np.asarray(card.get("gamma", [np.percentile(_f_hat(x, m), percentile)
                                          for x, m in zip(per_label, max_logit)]), np.float64)
    acceptance = np.asarray([max(_sigmoid(_f_hat(x, m) - g).mean(), 1e-9)
                             for x, m, g in zip(per_label, max_logit, gamma)])
    _calibrations[key] = Calibration(max_logit, gamma, acceptance)
    return _calibrations[key]


def _f_hat(logits: np.ndarray, max_logit: float, eps: float = 1e-6) -> np.ndarray:
    d = np.minimum(logits.astype(np.float64), max_logit) - max_logit  # ≤ 0: above the max counts as the max
    return d - np.log1p(-np.exp(d - eps))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1 + np.tanh(0.5 * x))


class Rejection(SamplingMode):
    name = "rejection"
    help = ("discriminator rejection sampling (Azadi et al. 2019); in a dataset slot by slot (sample i depends "
            "only on (seed, i)): each sample is the first of its oversample candidates D's acceptance probability "
            "accepts, else its best-scored one")

    def plan(self, d: Draw) -> Plan:
        return whole(d.model, d.n, d.seed, d.oversample, d.labels, d.start, d.truncation)

    def plan_slots(self, d: Draw) -> Plan:
        return by_slot(d.model, d.n, d.seed, d.oversample, d.labels, d.start, d.truncation)

    def ranking(self, model: Model, oversample: int, source: str, samples: Samples | None = None) -> str:
        """The score, the rule, the budget (and the share accepted, once known)."""
        accepted = "" if samples is None or samples.acceptance is None else f", accepted {samples.acceptance:.3f}"
        return f"rejection by {model.card.score_name} (Azadi et al. 2019), budget {oversample} per sample{accepted}"


def whole(model: Model, n: int, seed: int, oversample: int, labels: np.ndarray | None, start: int = 0,
          truncation: float = 1.0) -> Plan:
    """Plan: discriminator rejection sampling, each label's candidates in index order, accepted with p(x).

    Candidate k of a label's pool has its latent and its acceptance uniform from (seed, stream, k);
    the first accepted candidates fill that label's slots, so rounds of any size give the same
    answer. The budget is n × oversample candidates in all; SamplingError when it runs out. Truncation
    narrows the candidates; the calibration stays the model's own, the same for every request.
    """
    if start:  # a slot's candidates depend on how many the slots before it used
        raise SamplingError("mode: rejection samples whole requests; it cannot start at an offset")
    cal = yield from calibrating(model)
    dim, dist = model.latent_dim, model.card.latent.distribution
    budget = n * oversample
    pools = [(0, np.arange(n))] if labels is None else [(int(k), np.flatnonzero(labels == k)) for k in np.unique(labels)]
    # 1. refuse at once what the calibrated acceptance rates say the budget cannot meet.
    expected = math.ceil(sum(len(slots) / cal.acceptance[label] for label, slots in pools))
    if expected > budget:
        raise SamplingError(
            f"oversample: rejection needs about {expected} candidates for n={n} at this model's acceptance "
            f"rate ({n / expected:.3f}), more than n × oversample = {budget}; raise oversample or lower n")
    slot_values, slot_scores, drawn, accepted = [None] * n, np.empty(n, np.float32), 0, 0
    for label, slots in pools:  # labels in order, sharing the request's budget
        stream = 0 if labels is None else 1 + label
        need, done, kept = len(slots), 0, []
        while len(kept) < need and drawn + done < budget:
            # 2. a round sized by the acceptance rate, 3. generate, score, accept in index order.
            size = min(budget - drawn - done, max(32, math.ceil(1.25 * (need - len(kept)) / cal.acceptance[label])))
            cand_labels = None if labels is None else np.full(size, label, np.int64)
            z = truncate(latents(seed, done, size, dim, dist, stream), truncation, model.card.latent.codes)
            values = yield from plans.generate(model, z, cand_labels)
            logits = yield from plans.score(model, values, cand_labels)
            u = uniforms(bits(seed, ACCEPT_STREAM + stream, done, size, 1)[:, 0])
            ok = np.flatnonzero(u < cal.accept_probability(logits, label))
            accepted += len(ok)
            kept.extend((values[i], logits[i]) for i in ok[:need - len(kept)])
            done += size
        drawn += done
        if len(kept) < need:
            what = "" if labels is None else f" of label {model.labels[label]!r}"
            raise SamplingError(
                f"oversample: rejection accepted {len(kept)} of {need} samples{what} before the request's budget "
                f"of {budget} candidates (n × oversample) ran out; raise oversample or lower n")
        for slot, (value, logit) in zip(slots, kept):
            slot_values[slot], slot_scores[slot] = value, logit
    out = Samples.of(model, seed, Rejection.name, np.stack(slot_values), labels, slot_scores, drawn, truncation)
    out.acceptance = accepted / drawn
    return out


def by_slot(model: Model, n: int, seed: int, oversample: int, labels: np.ndarray | None, start: int = 0,
            truncation: float = 1.0) -> Plan:
    """Plan: rejection sampling slot by slot, as datasets stream it: slot i takes the first of its own
    candidates (i·oversample …, as in nice) that D's acceptance probability accepts.

    Unlike `rejection`, sample i depends only on (seed, i), so a dataset can start at any index and
    be split across workers. A slot none of whose candidates is accepted keeps its best-scored one
    (slotwise.first_accepted); the acceptance rate says how often that was not needed.
    """
    cal = yield from calibrating(model)

    def test(values, cand_labels, index) -> Plan:
        logits = yield from plans.score(model, values, cand_labels)
        u = np.array([uniforms(bits(seed, ACCEPT_STREAM, int(i), 1, 1)[:, 0])[0] for i in index])
        per_label = np.zeros(len(values), np.int64) if cand_labels is None else cand_labels
        p = np.empty(len(values))
        for label in np.unique(per_label):
            mask = per_label == label
            p[mask] = cal.accept_probability(logits[mask], int(label))
        return logits, u < p

    return (yield from first_accepted(model, n, seed, oversample, labels, start, truncation, test, Rejection.name))
