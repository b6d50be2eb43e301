"""Honest tests on data that is not MNIST, made here: 32×32 RGB patterns with labels and 28×28 grey shapes. A run on
each is measured against its own held-out split (never by a digit classifier), gated on those measures, published
and served; and the measures rank real images > a trained model > its early snapshot > a collapsed run."""
from __future__ import annotations

import io

import pytest
from PIL import Image

from benchmarks.measures import measure_dataset, ranked
from service.repository import Card
from tests.datasets import patterns, save_npz, shapes
from training import data
from training.config import TrainConfig
from training.evaluate import CONDITIONAL_GATE, DATA_GATE, LABELLED_GATE
from training.export import export
from training.trainer import train

DIGIT_KEYS = {"classes_covered", "class_shares", "mean_confidence", "min_class_share"}
SMALL = {"g_channels": 32, "d_channels": 8, "batch_size": 32, "latent_dim": 16}


@pytest.mark.parametrize("name", ["patterns", "shapes"])
def test_the_measures_rank_real_trained_early_and_collapsed(name):
    record = measure_dataset(name, steps=800, n=900)
    sets = record["sets"]
    assert ranked(record), {k: {m: round(v, 2) for m, v in sets[k].items()} for k in sets}
    assert sets["real"]["swd_ratio"] < 2 and sets["real"]["frechet_random_ratio"] < 2
    assert sets["blurred"]["swd_ratio"] > sets["real"]["swd_ratio"] * 2
    if name == "patterns":  # labelled: the run's own classifier's features rank them too (ranked() checks them)
        assert sets["real"]["precision"] > 0.8 and sets["collapsed"]["recall"] == 0


def test_an_rgb_job_is_measured_on_its_own_split_gated_published_and_served(tmp_path, make_app):
    x, y = patterns(600)
    source = str(save_npz(tmp_path / "patterns.npz", x, y))
    config = TrainConfig(family="image-cgan", steps=300, data=source, params={**SMALL, "ema": 0.99}, model="my-patterns")
    path = export(train(config), tmp_path / "models", evaluate=True, data_name="upload-1234")
    card = Card.load(path)
    against = card.measured_against
    assert against.data == "upload-1234" and against.data_sha256 == data.fingerprint(source)
    assert against.split["held_out"] == 120 and against.split["stratified"] and card.lineage.split == against.split
    assert against.classifier["classes"] == 6 and against.classifier["held_out_accuracy"] > 0.6  # its own labels
    assert card.labels == [str(i) for i in range(6)] and card.sample_shape == [3, 32, 32]
    assert [b.metric for b in card.gate.bars] == [m for m, _, _ in DATA_GATE + LABELLED_GATE + CONDITIONAL_GATE]
    assert all(b.value is not None for b in card.gate.bars)  # computed on its own data
    assert not DIGIT_KEYS & set(card.metrics["plain"]) and "evaluator_b" not in card.metrics
    with make_app(tmp_path / "models") as api:
        response = api.get("/v1/models/my-patterns/samples.png", params={"n": 4, "version": card.version})
        assert response.status_code == 200
        assert Image.open(io.BytesIO(response.content)).mode == "RGB"


def test_a_digit_family_on_grey_shapes_is_never_judged_as_digits(tmp_path):
    x, _ = shapes(400)
    source = str(save_npz(tmp_path / "shapes.npz", x, None))
    config = TrainConfig(family="mnist-dcgan", steps=30, data=source, model="my-shapes",
                         params={"g_channels": 16, "d_channels": 4, "batch_size": 16, "codes": 0, "d_refine": 0})
    card = Card.load(export(train(config), tmp_path / "models", evaluate=True))
    assert card.measured_against.classifier is None and card.measured_against.evaluators is None
    assert not DIGIT_KEYS & set(card.metrics["plain"]) and "evaluator_b" not in card.metrics
    assert "truncation" not in card.model_extra  # a digit measure
    assert [b.metric for b in card.gate.bars] == [m for m, _, _ in DATA_GATE]
    assert card.gate.outcome == "failed"  # 30 steps: far from its own data, never the default
    assert card.promoted is False
