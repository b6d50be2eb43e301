"""The unconditional digit families' code (clusters as pseudo-labels), nice per cluster, the refined D."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from service import sampling
from service.repository import load
from training import data
from training.config import TrainConfig
from training.export import export
from training.families import mnist_dcgan, mnist_mlp
from training.families.base import sample_latent
from training.trainer import train


@pytest.mark.parametrize("family, latent", [(mnist_dcgan, "uniform"), (mnist_mlp, "normal")])
def test_every_code_is_drawn_equally_often_from_the_served_latent(family, latent):
    cfg = family.Config(latent_dim=8, codes=7, latent=latent)
    G = family.Generator(cfg)
    z = sample_latent(cfg, 70_000, torch.Generator().manual_seed(0))
    shares = np.bincount(G.code.index(z).numpy(), minlength=7) / len(z)
    np.testing.assert_allclose(shares, 1 / 7, atol=0.006)
    one_hot = G.code(z)[:, :7]  # G sees the code one-hot beside the other 7 coordinates
    assert G.code(z).shape == (70_000, 7 + 7) and (one_hot.sum(1) == 1).all()


def test_balanced_clusters_have_equal_sizes_and_group_similar_digits():
    split = data.mnist_split()
    x, y = split["train_x"][:1000], split["train_y"][:1000]
    clusters = data.balanced_clusters(x, 10)
    assert np.bincount(clusters, minlength=10).tolist() == [100] * 10
    np.testing.assert_array_equal(clusters, data.balanced_clusters(x, 10))  # seeded
    flat = x.reshape(len(x), -1)

    def spread(assign):
        return sum(((flat[assign == c] - flat[assign == c].mean(0)) ** 2).sum() for c in range(10))

    shuffled = np.random.default_rng(0).permutation(clusters)
    assert spread(clusters) < 0.85 * spread(shuffled)
    purity = sum(np.bincount(y[clusters == c]).max() for c in range(10)) / len(y)
    assert purity > 0.4  # the labels themselves are never used; chance would be about 0.15


def test_refining_the_discriminator_makes_it_tell_real_from_served_samples():
    params = {"latent_dim": 8, "g_hidden": 8, "d_hidden": 16, "batch_size": 32, "codes": 4}

    def loss(d_refine):  # D's real-against-fake loss on held-out digits and fresh served samples
        checkpoint = train(TrainConfig(family="mnist-mlp", steps=3, seed=0, params={**params, "d_refine": d_refine}))
        real = torch.from_numpy(data.mnist_split()["test_x"][:256])
        with torch.no_grad():
            fake = checkpoint.generator(sample_latent(checkpoint.family_config, 256, torch.Generator().manual_seed(9)))
            d_real, d_fake = checkpoint.discriminator(real), checkpoint.discriminator(fake)
        return float(F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real))
                     + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake)))

    assert loss(100) < 0.5 * loss(0)


@pytest.mark.parametrize("family, latent", [(mnist_dcgan, "uniform"), (mnist_mlp, "normal")])
def test_the_service_bins_latents_into_the_codes_the_generator_draws(family, latent):
    cfg = family.Config(latent_dim=8, codes=7, latent=latent)
    z = sampling.latents(3, 0, 20_000, 8, latent)
    expected = family.Generator(cfg).code.index(torch.from_numpy(z)).numpy()
    np.testing.assert_array_equal(sampling.latent_codes(z, 7, latent), expected)  # the same edges, compared alike


def test_nice_keeps_each_clusters_share_and_takes_its_best(tmp_path):
    params = {"latent_dim": 8, "g_hidden": 8, "d_hidden": 8, "batch_size": 8, "codes": 4}
    checkpoint = train(TrainConfig(family="mnist-mlp", steps=2, seed=0, params=params))
    model = load("mnist-mlp", 1, export(checkpoint, tmp_path, evaluate=False))
    assert model.card.latent.codes == 4
    n, oversample = 40, 5
    z = sampling.latents(11, 0, n * oversample, 8, "normal")
    candidates = sampling.run(sampling.generate(model, z, None))
    scores = sampling.run(sampling.score(model, candidates, None))
    codes = sampling.latent_codes(z, 4, "normal")
    nice = sampling.sample(model, n, 11, mode="nice", oversample=oversample)
    kept = [int(np.flatnonzero((candidates == v).all(axis=(1, 2, 3)))[0]) for v in nice.values]
    slot_codes = codes[::oversample]
    assert sorted(codes[kept]) == sorted(slot_codes)  # every cluster as often as among plain slots
    for c in np.unique(slot_codes):  # and within it the discriminator's best
        best = np.sort(scores[codes == c])[::-1][:np.sum(slot_codes == c)]
        np.testing.assert_allclose(np.sort(scores[kept][codes[kept] == c])[::-1], best)


def test_too_few_images_for_the_clusters_is_refused_by_name():
    with pytest.raises(ValueError, match="codes: 20 clusters need at least 20 training images, the data has 5"):
        data.balanced_clusters(np.zeros((5, 1, 28, 28), np.float32), 20)
