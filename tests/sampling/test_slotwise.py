"""Slot-by-slot modes (filtered, and nice and rejection as datasets stream them): sample i depends on (seed, i)
alone, whatever the request's size or offset; the filter's classifier and its refusals."""
from __future__ import annotations

import numpy as np
import pytest

from service.repository import load
from service.sampling import SamplingError, modes, plans
from service.sampling.modes import filtered as filtering
from service.settings import Settings

CLASSIFIER = Settings().filter_classifier


@pytest.fixture(scope="module")
def cgan(serving_repository):
    return load("mnist-cgan", 1, serving_repository / "mnist-cgan" / "1")


@pytest.fixture(scope="module")
def judge():
    return filtering.classifier(CLASSIFIER, 0.12)


def stream(model, n, mode, labels, start=0, judge=None):
    return plans.run(modes.plan(model, n, 7, mode, 4, labels, start, aid=judge, stream=True))


@pytest.mark.parametrize("mode", ["nice", "rejection", "filtered"])
def test_a_slot_is_the_same_in_any_window(cgan, judge, mode):
    labels = np.arange(40, dtype=np.int64) % 10
    whole = stream(cgan, 40, mode, labels, judge=judge)
    for start, n in ((0, 1), (13, 9), (31, 9)):
        part = stream(cgan, n, mode, labels[start:start + n], start, judge)
        np.testing.assert_array_equal(part.values, whole.values[start:start + n])
        np.testing.assert_array_equal(part.scores, whole.scores[start:start + n])


def test_filtered_keeps_the_first_confident_candidate_and_counts_what_it_drew(cgan, judge):
    labels = np.arange(60, dtype=np.int64) % 10
    out = stream(cgan, 60, "filtered", labels, judge=judge)
    conf = plans.run(filtering.confidence(judge, cgan, out.values, labels))
    np.testing.assert_allclose(out.scores, conf, rtol=1e-5)
    passed = out.scores >= 0.12
    assert out.mode == "filtered" and 0 < out.acceptance <= passed.mean() <= 1
    assert out.candidates == round(passed.sum() / out.acceptance)  # accepted / drawn


def test_the_filter_refuses_what_its_classifier_cannot_judge(serving_repository, judge, tmp_path):
    curves = load("curves-cgan", 1, serving_repository / "curves-cgan" / "1")
    with pytest.raises(SamplingError, match="^mode: the filter's classifier judges"):
        filtering.check(curves, judge)
    dcgan = load("mnist-dcgan", 1, serving_repository / "mnist-dcgan" / "1")
    with pytest.raises(SamplingError, match="unconditional"):
        filtering.check(dcgan, judge)
    with pytest.raises(SamplingError, match="GANSERVE_FILTER_CLASSIFIER"):
        filtering.classifier(tmp_path / "none.onnx", 0.9)
    with pytest.raises(SamplingError, match="^threshold"):
        filtering.classifier(CLASSIFIER, 1.5)
