"""The evaluator tells real digits from noise and from a collapsed generator; no torch."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from training import evaluate
from training.data import mnist_split


@pytest.fixture(scope="module")
def measures():
    split = mnist_split()
    rng = np.random.default_rng(0)
    real = split["train_x"][:1000]
    noise = rng.uniform(-1, 1, real.shape).astype(np.float32)
    collapsed = np.repeat(split["train_x"][:1], 1000, axis=0) + rng.normal(0, 0.02, real.shape).astype(np.float32)
    return {name: evaluate.digits(x) for name, x in
            {"real": real, "noise": noise, "collapsed": np.clip(collapsed, -1, 1)}.items()}


def test_classifier_card_holds_its_held_out_accuracy():
    card = evaluate.classifier_card()
    assert card["held_out_accuracy"] >= 0.98
    assert card["real_baseline"]["frechet"] > 0


def test_real_digits_cover_every_class_and_sit_close(measures):
    real = measures["real"]
    assert real["classes_covered"] == 10 and 0.05 <= real["min_class_share"] and real["max_class_share"] <= 0.15
    assert real["precision"] > 0.8 and real["recall"] > 0.8


def test_noise_is_far_and_imprecise(measures):
    real, noise = measures["real"], measures["noise"]
    assert noise["frechet"] > 20 * real["frechet"]
    assert noise["precision"] < 0.2
    # (Not confidence: the classifier is as sure of noise as of digits, as classifiers are out of distribution.)


def test_collapse_is_caught_by_coverage_and_recall(measures):
    real, collapsed = measures["real"], measures["collapsed"]
    assert collapsed["classes_covered"] <= 2 and collapsed["max_class_share"] > 0.9
    assert collapsed["recall"] < 0.1 < real["recall"]
    assert collapsed["frechet"] > 10 * real["frechet"]


def test_label_accuracy_against_requested_labels():
    split = mnist_split()
    x, y = split["train_x"][:200], split["train_y"][:200]
    assert evaluate.digits(x, y)["label_accuracy"] > 0.97
    assert evaluate.digits(x, (y + 1) % 10)["label_accuracy"] < 0.05


def test_frechet_of_identical_sets_is_zero():
    f = np.random.default_rng(0).normal(size=(500, 16))
    assert abs(evaluate.frechet(f, f)) < 1e-6
    assert evaluate.frechet(f, f + 1) == pytest.approx(16, rel=1e-6)


def test_evaluator_imports_without_torch():
    code = "import sys, training.evaluate; print(json.dumps('torch' in sys.modules))"
    out = subprocess.run([sys.executable, "-c", "import json; " + code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) is False


@pytest.mark.quality  # a tiny model trained, exported and evaluated in full: about 10 s
def test_the_exporter_records_truncation_for_digit_models_only(tmp_path, tiny_repository):
    from service.repository import Card
    from tests.utils import export_tiny

    card = Card.load(export_tiny("mnist-mlp", tmp_path, evaluate=True))
    rows = card.model_extra["truncation"]["by_psi"]
    assert [row["psi"] for row in rows] == [1.0, 0.8, 0.6, 0.4]
    assert rows[0]["precision"] == card.metrics["plain"]["precision"] and "frechet_ratio" in rows[0]
    assert "truncation" not in Card.load(next(tiny_repository.glob("*/1"))).model_extra
