"""The translation family: a tiny CycleGAN trains, exports four networks that onnxruntime runs as torch does,
and the evaluator's measures of label preservation and cycle error mean what they say."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from service.repository import Card, load
from service.sampling.translation import translate_now
from training.config import TrainConfig
from training.data import mnist_split, uci_split
from training.evaluate import digits_translation
from training.export import export
from training.families import FAMILIES, digits_cyclegan
from training.trainer import build, train
from tests.utils import TINY

def family_card(config: TrainConfig) -> dict:
    family, cfg, _, _ = build(config)
    return family.card(cfg, config.data)


FILES = ["generator_a_to_b.onnx", "generator_b_to_a.onnx", "discriminator_a.onnx", "discriminator_b.onnx"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    reports = []
    config = TrainConfig(family="digits-cyclegan", steps=2, params=TINY["digits-cyclegan"], progress_every=1,
                         snapshot_every=2)
    checkpoint = train(config, on_progress=reports.append)
    path = export(checkpoint, tmp_path_factory.mktemp("models"), evaluate=False)
    return checkpoint, path, reports


def test_trains_with_progress_losses_and_a_snapshot_of_pairs(tiny):
    _, _, reports = tiny
    assert [r.step for r in reports] == [1, 2]
    assert all(np.isfinite([r.loss_d, r.loss_g, r.extra["loss_cycle"], r.extra["loss_identity"]]).all()
               for r in reports)
    assert reports[-1].snapshot.shape == (16, 1, 28, 28)  # rows of a, a→b, b, b→a
    assert {"loss_cycle", "loss_identity"} <= set(reports[-1].point())


def test_layout_is_where_the_ink_lies_not_how_much():
    digits = torch.from_numpy(mnist_split()["test_x"][:8])  # (8, 1, 28, 28) in [-1, 1]
    shares = digits_cyclegan.layout(digits)
    assert shares.shape == (8, 49) and torch.allclose(shares.sum(1), torch.ones(8), atol=1e-3)
    fainter = (digits + 1) / 2 - 1  # the same strokes at half the ink
    assert digits_cyclegan._layout_loss(fainter, digits) < 0.01
    assert digits_cyclegan._layout_loss(digits.roll(1, 0), digits) > 0.2  # other digits lie elsewhere


@pytest.mark.parametrize("weight", ["layout", "layout_b_to_a"])
def test_layout_loss_is_reported_when_weighted(weight):
    config = TrainConfig(family="digits-cyclegan", steps=1, params={**TINY["digits-cyclegan"], weight: 1.0})
    reports = []
    train(config, on_progress=reports.append)
    assert reports[-1].extra["loss_layout"] > 0
    assert ("B→A" in family_card(config)["changes"]) == (weight == "layout_b_to_a")


def test_cycle_noise_reaches_the_cycle_loss_and_the_card():
    """The same seed, with and without noise on the translations the cycle brings back: only the cycle loss differs."""
    first = {}
    for noise in (0.0, 0.5):
        config = TrainConfig(family="digits-cyclegan", steps=1, params={**TINY["digits-cyclegan"], "cycle_noise": noise})
        reports = []
        train(config, on_progress=reports.append)
        first[noise] = reports[0]
        assert ("noise" in family_card(config)["changes"]) == bool(noise)
    assert first[0.0].loss_g == first[0.5].loss_g  # the adversarial loss comes before the noise
    assert first[0.0].extra["loss_cycle"] != first[0.5].extra["loss_cycle"]


def test_a_critic_with_a_whole_digit_score_trains_exports_and_scores(tmp_path):
    """The whole-digit score joins the patches in training and in the served score, and survives the ONNX export."""
    config = TrainConfig(family="digits-cyclegan", steps=1, params={**TINY["digits-cyclegan"], "whole": 1.0})
    checkpoint = train(config)
    critic = checkpoint.discriminator.a.eval()
    digits = torch.from_numpy(mnist_split()["test_x"][:4])
    assert critic.patches(digits).shape == (4, 50)  # 7×7 patches and the whole digit
    with torch.no_grad():
        whole = critic.whole(critic.net[:-1](digits).flatten(1))[:, 0]
        assert torch.allclose(critic(digits), (critic.patches(digits)[:, :49].mean(1) + whole) / 2)
    model = load("whole", 1, export(checkpoint, tmp_path, evaluate=False))  # export checks ONNX against torch
    assert "whole digit" in model.card.changes
    assert translate_now(model, uci_split()["test_x"][:3], "b_to_a").scores.shape == (3,)


def test_card_names_the_domains_their_shapes_and_files(tiny):
    _, path, _ = tiny
    card = Card.load(path)
    assert card.kind == "translation" and card.latent is None and card.labels is None
    assert (card.domains.a.name, card.domains.b.name) == ("mnist", "uci")
    assert card.domains.a.shape == card.domains.b.shape == [1, 28, 28]
    assert sorted(card.domains.files()) == sorted(FILES) and all((path / f).is_file() for f in FILES)
    assert card.lineage.data_sha256 is not None


@pytest.mark.parametrize("direction, generator, critic", [("a_to_b", "a_to_b", "b"), ("b_to_a", "b_to_a", "a"),
                                                          ("uci", "a_to_b", "b"), ("uci_to_mnist", "b_to_a", "a")])
def test_onnx_translation_equals_torch(tiny, direction, generator, critic):
    checkpoint, path, _ = tiny
    model = load("tiny", 1, path)
    x = uci_split()["test_x"][:5]
    result = translate_now(model, x, direction)
    with torch.no_grad():
        expected = getattr(checkpoint.generator, generator)(torch.from_numpy(x)).numpy()
        scores = getattr(checkpoint.discriminator, critic)(torch.from_numpy(expected)).numpy()
    assert result.values.shape == (5, 1, 28, 28) and result.scores.shape == (5,)
    np.testing.assert_allclose(result.values, expected, atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(result.scores, scores, atol=1e-4, rtol=1e-4)
    assert result.values.min() >= -1 and result.values.max() <= 1


def test_a_card_that_lies_about_a_domain_shape_is_a_load_error(tiny, tmp_path):
    import json
    import shutil

    from service.repository import CardError

    _, path, _ = tiny
    shutil.copytree(path, tmp_path / "1")
    card = json.loads((tmp_path / "1" / "card.json").read_text())
    card["domains"]["b"]["shape"] = [1, 32, 32]
    (tmp_path / "1" / "card.json").write_text(json.dumps(card))
    with pytest.raises(CardError, match=r"^card.domains.b.shape"):
        load("liar", 1, tmp_path / "1")
    card["domains"]["b"]["shape"] = [1, 28, 28]
    card["domains"]["a"]["generator"] = "missing.onnx"
    (tmp_path / "1" / "card.json").write_text(json.dumps(card))
    with pytest.raises(CardError, match=r"^card.domains"):
        load("liar", 1, tmp_path / "1")


class _Same(torch.nn.Module):
    """A translation that changes nothing, and a critic of one constant score."""

    def forward(self, image):
        return image * 1.0

    def patches(self, image):
        return image.mean((1, 2, 3), keepdim=True)


def test_the_measures_of_a_translation_that_changes_nothing(tiny, tmp_path, monkeypatch):
    """Labels kept exactly as the judge read the inputs, no cycle error, and Fréchet ratios unchanged."""
    checkpoint, _, _ = tiny
    monkeypatch.setattr(FAMILIES["digits-cyclegan"], "networks", lambda cfg, G, D: {
        "generator_a_to_b": _Same(), "generator_b_to_a": _Same(), "discriminator_a": D.a, "discriminator_b": D.b})
    model = load("same", 1, export(checkpoint, tmp_path, evaluate=False))
    metrics = digits_translation(model)
    for direction in ("a_to_b", "b_to_a"):
        m = metrics[direction]
        assert m["label_accuracy"] == m["input_label_accuracy"]
        assert m["frechet_ratio"] == pytest.approx(m["input_frechet_ratio"])
        assert m["cycle_error"] == 0 and m["change"] == 0
    assert metrics["n"] == {"a": len(mnist_split()["test_y"]), "b": len(uci_split()["test_y"])} == {"a": 1000, "b": 360}
    # The judges read their own domain: the MNIST classifier the raw UCI digits poorly, the UCI one MNIST's.
    assert metrics["b_to_a"]["input_label_accuracy"] < 0.9 and metrics["b_to_a"]["real_frechet_ratio"] < 3
