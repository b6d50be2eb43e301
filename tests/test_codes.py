"""The unconditional digit families' code (clusters as pseudo-labels) and the refined discriminator."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from training import data
from training.config import TrainConfig
from training.families import mnist_dcgan, mnist_mlp
from training.trainer import sample_latent, train


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
