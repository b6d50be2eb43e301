"""Continuing from a published version: its ONNX weights back in torch, and the cGAN's auxiliary classifier."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import onnxruntime as ort
import torch

from training.config import TrainConfig
from training.trainer import train
from service.repository import Card
from training.warm import warm_checkpoint
from tests.utils import ROOT, TINY, export_tiny


def test_a_warm_start_holds_the_published_weights_exactly(tmp_path):
    folder = export_tiny("mnist-cgan", tmp_path, steps=2)
    config = TrainConfig(family="mnist-cgan", steps=1, params={**TINY["mnist-cgan"], "aux": 1.0, "aux_rank": 0.0})
    warm = warm_checkpoint(config, folder)
    z, labels = torch.randn(6, TINY["mnist-cgan"]["latent_dim"]), torch.arange(6)
    with torch.no_grad():
        x = warm.generator.eval()(z, labels)
        score = warm.discriminator.eval()(x, labels)
    g = ort.InferenceSession(str(folder / "generator.onnx"))
    d = ort.InferenceSession(str(folder / "discriminator.onnx"))
    served = g.run(None, {"z": z.numpy(), "label": labels.numpy()})[0]
    np.testing.assert_allclose(served, x.numpy(), atol=1e-5)
    np.testing.assert_allclose(d.run(None, {"sample": served, "label": labels.numpy()})[0], score.numpy(), atol=1e-4)
    train(config, resume=warm)  # and it trains on from there, the new head included


def test_continuing_shows_a_progress_bar_and_publishes_a_gated_next_version_that_is_not_the_default(tmp_path):
    """As a user runs it: into a scratch folder, numbered after the served folders' versions, measured and gated."""
    shipped, scratch = tmp_path / "models", tmp_path / "scratch"
    folder = export_tiny("mnist-cgan", shipped, steps=2)
    env = {**os.environ, "GANSERVE_REPOSITORY": f"{tmp_path / 'var'}:{shipped}"}
    out = subprocess.run([sys.executable, "-m", "ganserve.cli", "warm", str(folder), "--steps", "3",
                          "--repository", str(scratch)], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr
    assert "continue mnist-cgan version 1" in out.stderr and "3/3" in out.stderr  # the last step reached the bar
    published = scratch / "mnist-cgan" / "2"  # after the served version 1, not a second version 1
    assert out.stdout.strip() == str(published)
    card = Card.load(published / "card.json")
    assert card.gate is not None and "plain" in card.metrics and not card.promoted
    assert card.model_extra["warm_start"]["from"] == "mnist-cgan version 1"


def test_the_served_cgan_score_adds_the_auxiliary_classifiers_label_log_probability():
    params = {**TINY["mnist-cgan"], "aux": 1.0, "aux_rank": 4.0}
    D = train(TrainConfig(family="mnist-cgan", steps=2, params=params)).discriminator.eval()
    x, labels = torch.rand(5, 1, 28, 28) * 2 - 1, torch.arange(5)
    with torch.no_grad():
        served = D(x, labels)
        D.train(), D.eval()
        log_p = torch.log_softmax(D.classifier(x), 1)[torch.arange(5), labels]
        D.aux_rank = 0.0
        plain = D(x, labels)
    torch.testing.assert_close(served, plain + 4.0 * log_p)


def test_a_cgan_with_the_auxiliary_classifier_names_its_score_in_the_cards_ranking(tmp_path):
    from service.repository import load
    from service.sampling import modes

    folder = export_tiny("mnist-cgan", tmp_path, aux=1.0)
    model = load("mnist-cgan", 1, folder)
    assert model.card.ranking.oversample == 20  # until training.ranking chooses one on evaluator A
    ranking = modes.get("nice").ranking(model, 20, "card")  # what X-Ranking says of a nice request
    assert "auxiliary classifier" in ranking and ranking.isascii()
