"""Every family: a tiny config trains two steps, exports, and onnxruntime agrees with torch."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from service import sampling
from service.repository import Card, load
from training.config import TrainConfig
from training.export import export
from training.families import FAMILIES
from training.families.base import sample_latent
from training.trainer import train
from tests.utils import TINY


def write_rgb_folder(root, per_class=4, size=12):
    """Two classes of small random RGB PNGs, one sub-folder each."""
    rng = np.random.default_rng(0)
    for name in ("cats", "dogs"):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(root / name / f"{i}.png")
    return root


def tiny_config(family: str, tmp_path) -> TrainConfig:
    data = str(write_rgb_folder(tmp_path / "rgb")) if family in ("rgb-dcgan", "image-cgan") else "default"
    return TrainConfig(family=family, steps=2, data=data, params=TINY[family], seed=0, progress_every=1)


SAMPLING = sorted(name for name, family in FAMILIES.items() if family.KIND != "translation")  # else: test_translation


def test_every_family_has_a_tiny_config():
    assert set(TINY) == set(FAMILIES)


@pytest.mark.parametrize("family", SAMPLING)
def test_round_trip_onnx_equals_torch(family, tmp_path):
    reports = []
    checkpoint = train(tiny_config(family, tmp_path), on_progress=reports.append)
    assert [r.step for r in reports] == [1, 2]
    assert all(np.isfinite([r.loss_d, r.loss_g]).all() for r in reports)
    path = export(checkpoint, tmp_path / "models", evaluate=False)
    card = Card.load(path)
    declared = FAMILIES[family]
    assert card.family == family and card.kind == declared.KIND and card.version == 1
    assert card.labels == declared.labels(checkpoint.family_config)  # image-cgan's: the data's classes
    picture = json.loads((path / "card.json").read_text()).get("picture")  # the service plots with it
    assert (picture is not None) == (declared.KIND in ("points", "curves"))
    model = load(family, 1, path)
    n = 5
    labels = sampling.resolve_labels(model, None, n)
    z = sampling.latents(7, 0, n, model.latent_dim, card.latent.distribution)
    got = sampling.run(sampling.generate(model, z, labels))
    assert list(got.shape[1:]) == card.sample_shape
    with torch.no_grad():
        inputs = (torch.from_numpy(z),) + ((torch.from_numpy(labels),) if labels is not None else ())
        expected = checkpoint.generator(*inputs).numpy()
        scores = checkpoint.discriminator(torch.from_numpy(got), *inputs[1:]).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(sampling.run(sampling.score(model, got, labels)), scores, atol=1e-4, rtol=1e-4)
    assert scores.shape == (n,)
    nice = sampling.sample(model, 3, seed=1, mode="nice", oversample=4, labels=labels[:3] if labels is not None else None)
    assert nice.values.shape[0] == 3


@pytest.mark.parametrize("family", SAMPLING)
def test_latent_matches_card(family):
    cfg = FAMILIES[family].Config(**TINY[family])
    z = sample_latent(cfg, 1000, torch.Generator().manual_seed(0))
    if cfg.latent == "uniform":
        assert z.min() >= -1 and z.max() <= 1
    else:
        assert 0.9 < float(z.std()) < 1.1


def test_rgb_dcgan_refuses_default_data(tmp_path):
    config = TrainConfig(family="rgb-dcgan", steps=1, params=TINY["rgb-dcgan"])
    with pytest.raises(ValueError, match="image folder"):
        train(config)


def test_image_size_must_be_a_multiple_of_4():
    with pytest.raises(ValueError, match="multiple of 4"):
        train(TrainConfig(family="rgb-dcgan", steps=1, data="x", params={"image_size": 30}))
    with pytest.raises(ValueError, match="params.channels: must be 1"):
        train(TrainConfig(family="image-cgan", steps=1, data="x", params={"channels": 2}))


def test_curves_cgan_labels_follow_a():
    family = FAMILIES["curves-cgan"]
    x, y = next(family.real_batches(family.Config(), "default", np.random.default_rng(0)))
    a = (x[:, 7] + 1).numpy()  # at x = 0 the curve is a − 1
    assert ((a > 1.5) == (y.numpy() == 1)).all()


def test_mode_seeking_penalises_a_generator_that_ignores_its_latent():
    from training.families import mnist_cgan

    family = FAMILIES["mnist-cgan"]
    cfg = mnist_cgan.Config(latent_dim=8, g_channels=8, mode_seeking=1.0)
    G = mnist_cgan.Generator(cfg).eval()  # running statistics: the same latent and label give the same digit
    z, labels = torch.randn(8, 8, generator=torch.Generator().manual_seed(0)), torch.arange(8) % 10
    penalty = family.g_penalty(cfg, G, z, labels, G(z, labels), torch.Generator().manual_seed(1))
    penalty.backward()
    assert penalty.item() > 0 and G.project[0].weight.grad.abs().sum() > 0
    with torch.no_grad():  # a G whose output no longer depends on z: the penalty grows
        G.project[0].weight[:, :8] = 0
    collapsed = family.g_penalty(cfg, G, z, labels, G(z, labels), torch.Generator().manual_seed(1))
    assert collapsed.item() > 100 * penalty.item()
    off = mnist_cgan.Config(latent_dim=8, g_channels=8)
    assert family.g_penalty(off, G, z, labels, G(z, labels), torch.Generator()).item() == 0
