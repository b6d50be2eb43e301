"""The trainer: resuming from a checkpoint continues the very same run; snapshots and progress."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from training.config import TrainConfig
from training.trainer import TrainingCancelled, load, train

TINY = {
    "curves-cgan": {"latent_dim": 8, "hidden": 8},
    "mnist-cgan": {"latent_dim": 8, "g_channels": 8, "d_channels": 4, "batch_size": 8},  # BN and dropout
    "mnist-dcgan": {"latent_dim": 8, "g_channels": 8, "d_channels": 4, "batch_size": 8, "optimizer": "sgd"},
}


def config(family, steps, **extra):
    # Bit-identical runs fix their threads: measured ones switch threads over their first steps, and a step's float
    # sums depend on the thread count (training/hardware.py).
    return TrainConfig(family=family, steps=steps, params=TINY[family], seed=3, progress_every=1, threads=1, **extra)


@pytest.mark.parametrize("family", sorted(TINY))
def test_resume_from_checkpoint_continues_the_same_run(family, tmp_path):
    whole = train(config(family, 6))
    path = tmp_path / "run.ckpt"
    with pytest.raises(TrainingCancelled):  # the interrupted run: checkpointed at step 3, then stopped
        train(config(family, 6, checkpoint_every=3), checkpoint_path=path, should_stop=_stop_after(3))
    partial = load(path)
    assert partial.step == 3
    resumed = train(config(family, 6), resume=partial)
    assert resumed.step == 6
    for a, b in zip(whole.generator.state_dict().values(), resumed.generator.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    for a, b in zip(whole.discriminator.state_dict().values(), resumed.discriminator.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    losses = lambda c: [(h["step"], h["loss_d"], h["loss_g"]) for h in c.history]  # noqa: E731
    assert losses(resumed) == losses(whole)


def _stop_after(steps):
    calls = iter(range(10**6))
    return lambda: next(calls) >= steps


def test_cancel_raises(tmp_path):
    with pytest.raises(TrainingCancelled):
        train(config("curves-cgan", 5), should_stop=lambda: True)


def test_same_seed_same_run():
    a, b = train(config("mnist-dcgan", 2)), train(config("mnist-dcgan", 2))
    assert [h["loss_d"] for h in a.history] == [h["loss_d"] for h in b.history]


def test_snapshots_and_progress_fields():
    reports = []
    train(TrainConfig(family="mnist-cgan", steps=2, params=TINY["mnist-cgan"], progress_every=1, snapshot_every=2),
          on_progress=reports.append)
    assert [r.snapshot is None for r in reports] == [True, False]
    assert reports[-1].snapshot.shape == (16, 1, 28, 28)
    assert 0 <= reports[-1].acc_real <= 1 and 0 <= reports[-1].acc_fake <= 1
    assert reports[-1].epoch == pytest.approx(2 * 8 / 4000)
    assert np.isfinite(reports[-1].loss_g)
