"""Sampling without HTTP: latents, plain / nice / rejection, labels, and batching that changes nothing."""
from __future__ import annotations

import dataclasses
import hashlib
import threading

import numpy as np
import pytest

from service import sampling
from service.repository import load
from service.sampling import SamplingError, plans
from service.sampling.modes import MODES, rejection
from service.sampling.batching import Batcher


@pytest.fixture(scope="module")
def models(serving_repository):
    return {path.parent.name: load(path.parent.name, 1, path) for path in serving_repository.glob("*/1")}


def test_latents_depend_only_on_seed_and_index():
    whole = sampling.latents(7, 0, 50, 8, "normal")
    np.testing.assert_array_equal(sampling.latents(7, 20, 10, 8, "normal"), whole[20:30])
    assert not np.array_equal(sampling.latents(8, 0, 50, 8, "normal"), whole)
    uniform = sampling.latents(7, 0, 1000, 4, "uniform")
    assert uniform.min() >= -1 and uniform.max() <= 1
    assert abs(whole.mean()) < 0.2 and 0.8 < whole.std() < 1.2


@pytest.mark.parametrize("distribution, digest", [("normal", "4c79c111487b1486"), ("uniform", "84fe459f50fcb7ae")])
def test_latents_keep_their_bytes_across_releases(distribution, digest):
    """The same (seed, index) gives the same latent in every version of the service."""
    latent = sampling.latents(7, 3, 16, 100, distribution)
    assert hashlib.sha256(latent.tobytes()).hexdigest()[:16] == digest


def test_latent_streams_are_independent_of_each_other():
    assert not np.array_equal(sampling.latents(7, 0, 10, 8, "normal", stream=1), sampling.latents(7, 0, 10, 8, "normal"))


def test_nice_keeps_highest_scores(models):
    model = models["quadratic"]  # unconditional, without clusters (a coded model: tests/test_codes.py)
    nice = sampling.sample(model, 4, seed=3, mode="nice", oversample=5)
    z = sampling.latents(3, 0, 20, model.latent_dim, model.card.latent.distribution)
    scores = sampling.run(sampling.score(model, sampling.run(sampling.generate(model, z, None)), None))
    np.testing.assert_array_equal(nice.scores, np.sort(scores)[::-1][:4])
    assert nice.candidates == 20


def test_nice_takes_the_oversample_of_the_cards_ranking_unless_the_request_names_one(models):
    from service.repository.card import Ranking

    model = models["quadratic"]
    ranked = dataclasses.replace(model, card=model.card.model_copy(update={"ranking": Ranking(oversample=3)}))
    nice = sampling.sample(ranked, 4, seed=3, mode="nice")
    ranking = MODES["nice"].ranking(ranked, *MODES["nice"].oversample(ranked, None))
    assert nice.candidates == 12 and "best 1 of 3" in ranking and "card" in ranking
    np.testing.assert_array_equal(nice.values, sampling.sample(model, 4, seed=3, mode="nice", oversample=3).values)
    assert sampling.sample(ranked, 4, seed=3, mode="nice", oversample=5).candidates == 20
    assert sampling.sample(model, 4, seed=3, mode="nice").candidates == 80  # no ranking: the classic 1 of 20


def test_nice_with_labels_keeps_each_label_best_of_its_own(models):
    model = models["mnist-cgan"]
    labels = np.array([3, 7, 3, 7, 7], dtype=np.int64)
    nice = sampling.sample(model, 5, seed=1, mode="nice", oversample=4, labels=labels)
    np.testing.assert_array_equal(nice.labels, labels)
    cand_labels = np.repeat(labels, 4)
    z = sampling.latents(1, 0, 20, model.latent_dim, model.card.latent.distribution)
    scores = sampling.run(sampling.score(model, sampling.run(sampling.generate(model, z, cand_labels)), cand_labels))
    for label in (3, 7):
        expected = np.sort(scores[cand_labels == label])[::-1][:int((labels == label).sum())]
        np.testing.assert_array_equal(nice.scores[labels == label], expected)


@pytest.mark.parametrize("name", ["quadratic", "mnist-dcgan", "mnist-cgan", "curves-cgan"])
def test_rejection_is_deterministic_and_reports_acceptance(models, name):
    model = models[name]
    labels = sampling.resolve_labels(model, None, 6)
    first = sampling.sample(model, 6, seed=5, mode="rejection", oversample=30, labels=labels)
    again = sampling.sample(model, 6, seed=5, mode="rejection", oversample=30, labels=labels)
    np.testing.assert_array_equal(first.values, again.values)
    assert first.values.shape[0] == 6 and 0 < first.acceptance <= 1
    assert first.candidates >= 6 and first.scores.shape == (6,)
    if labels is not None:
        np.testing.assert_array_equal(first.labels, labels)


def test_rejection_accepts_by_calibrated_probability(models):
    model = models["quadratic"]
    cal = rejection.calibration(model)
    assert cal.accept_probability(np.array([cal.max_logit[0] + 5]))[0] > 0.99  # above the max: accepted
    p = cal.accept_probability(np.array([cal.max_logit[0] - 10, cal.max_logit[0] - 1, cal.max_logit[0]]))
    assert np.all(np.diff(p) > 0)


def test_rejection_refuses_what_the_budget_cannot_meet(models):
    with pytest.raises(SamplingError, match="oversample: .*n × oversample"):
        sampling.sample(models["mnist-dcgan"], 50, seed=1, mode="rejection", oversample=1)


def test_rejection_reads_its_calibration_from_the_card(models):
    model = models["quadratic"]
    rejection._calibrations.clear()
    model.card.rejection = {"max_logit": [100.0], "gamma": [0.0]}
    try:
        assert rejection.calibration(model).max_logit[0] == 100.0
    finally:
        model.card.rejection = None
        rejection._calibrations.clear()


def test_unknown_label_names_the_valid_ones(models):
    with pytest.raises(SamplingError, match="unknown label '12'; known: 0, 1, 2"):
        sampling.resolve_labels(models["mnist-cgan"], ["12"], 1)
    with pytest.raises(SamplingError, match="unconditional"):
        sampling.resolve_labels(models["mnist-dcgan"], ["1"], 1)
    counts = sampling.resolve_labels(models["curves-cgan"], {"upper": 2, "lower": 1}, 3)
    assert [models["curves-cgan"].labels[i] for i in counts] == ["upper", "upper", "lower"]


@pytest.mark.parametrize("mode", ["plain", "nice", "rejection"])
def test_batched_samples_equal_unbatched_bytes(models, mode):
    """Requests merged into shared onnxruntime calls, or split over several, come out as when run alone."""
    model = models["mnist-cgan"]
    batcher = Batcher(max_rows=64, max_wait=0.005, max_queue=64)
    seeds, oversample = list(range(12)), 40 if mode == "rejection" else 8
    size = {s: 3 if s % 4 else 50 for s in seeds}  # some calls span several batches of 64 rows
    labels = {s: np.arange(size[s], dtype=np.int64) % 3 for s in seeds}
    alone = {s: sampling.sample(model, size[s], s, mode, oversample, labels[s]) for s in seeds}
    merged: dict[int, sampling.Samples] = {}

    def request(s):
        with batcher.sampling(model.name):
            merged[s] = sampling.sample(model, size[s], s, mode, oversample, labels[s], runner=batcher.run)

    with batcher.admit(model.name):
        threads = [threading.Thread(target=request, args=(s,)) for s in seeds]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    batcher.close()
    for s in seeds:
        assert merged[s].values.tobytes() == alone[s].values.tobytes()


def test_an_abandoned_request_stops_at_the_next_batch(models):
    """A cancelled request's remaining rows are dropped by the lane, and the plan makes no further call."""
    model = models["mnist-cgan"]
    batcher = Batcher(max_rows=8, max_wait=0.0, max_queue=4)
    cancel, calls = threading.Event(), []

    class Counting:  # the generator session, counting the batches the lane runs
        def __init__(self, session):
            self.session, self.batches = session, 0

        def run(self, outputs, feed):
            self.batches += 1
            cancel.set()  # the client leaves while the first batch runs
            return self.session.run(outputs, feed)

    counting = Counting(model.generator)

    def runner(call):
        calls.append(call.network)
        call.session = counting if call.network == "generator" else call.session
        return batcher.run(call)

    labels = np.arange(64, dtype=np.int64) % 10
    with pytest.raises(plans.Cancelled):
        plans.run(sampling.plan(model, 64, 1, "nice", 8, labels), runner, cancel)
    batcher.close()
    assert calls == ["generator"] and counting.batches == 1  # of the 64 batches of 8 rows, one ran
