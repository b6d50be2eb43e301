"""train(config, on_progress) -> Checkpoint: one loop for every family."""
from __future__ import annotations

import contextlib
import copy
import functools
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from training.config import TrainConfig, build_family_config
from training.families import get_family

log = logging.getLogger(__name__)


class Cancelled(Exception):
    """The training loop saw the cancel flag at a step boundary."""


@dataclass
class Checkpoint:
    """Everything needed to export, evaluate or resume a run."""
    config: TrainConfig
    family_config: Any
    generator: torch.nn.Module  # the one to serve (the EMA copy when ema > 0)
    discriminator: torch.nn.Module
    step: int
    seconds: float
    history: list[dict] = field(default_factory=list)
    state: dict | None = None  # optimiser and raw-G state for resuming


@dataclass
class Progress:
    step: int
    steps: int
    epoch: float
    loss_d: float
    loss_g: float
    acc_real: float  # share of real samples D calls real
    acc_fake: float  # share of fake samples D calls fake
    seconds: float
    snapshot: np.ndarray | None = None  # (n, ...) generator samples on a fixed latent batch
    extra: dict[str, float] = field(default_factory=dict)  # a family's own losses (cycle, identity, ...)

    def point(self) -> dict:
        """The report as one flat history point (no snapshot)."""
        out = {k: v for k, v in vars(self).items() if k not in ("snapshot", "extra")}
        return {**out, **self.extra}


def sample_latent(family_config, n: int, generator: torch.Generator) -> torch.Tensor:
    """Latents for training, from the family's latent distribution."""
    if family_config.latent == "uniform":
        return torch.rand(n, family_config.latent_dim, generator=generator) * 2 - 1  # (n, latent_dim)
    return torch.randn(n, family_config.latent_dim, generator=generator)


def random_labels(family, n: int, generator: torch.Generator) -> torch.Tensor | None:
    if family.LABELS is None:
        return None
    return torch.randint(len(family.LABELS), (n,), generator=generator)


def build(config: TrainConfig):
    """The family module, its validated Config, and fresh (G, D)."""
    family = get_family(config.family)
    family_config = build_family_config(family.Config, config.params)
    torch.manual_seed(config.seed)
    return family, family_config, family.Generator(family_config), family.Discriminator(family_config)


def make_optimizers(family, family_config, G, D):
    if hasattr(family, "optimizers"):
        return family.optimizers(family_config, G, D)
    betas = (getattr(family_config, "beta1", 0.9), 0.999)
    return (torch.optim.Adam(G.parameters(), lr=family_config.lr, betas=betas),
            torch.optim.Adam(D.parameters(), lr=family_config.lr, betas=betas))


def train(
    config: TrainConfig,
    on_progress: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    checkpoint_path: Path | None = None,
    resume: Checkpoint | None = None,
) -> Checkpoint:
    """Train one family; resumes from a checkpoint (same config) when given one."""
    if config.threads:
        torch.set_num_threads(config.threads)
    family, cfg, G, D = build(config)
    steps = config.steps or family.DEFAULT_STEPS
    opt_g, opt_d = make_optimizers(family, cfg, G, D)
    ema_g = copy.deepcopy(G).eval() if cfg.ema > 0 else None
    gen = torch.Generator().manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    start, history, elapsed = 0, [], 0.0
    if resume is not None:
        start, history, elapsed = resume.step, list(resume.history), resume.seconds
        _load_state(resume.state, G, D, ema_g, opt_g, opt_d, gen, rng)
    batches = family.real_batches(cfg, config.data, rng)
    fixed_z = sample_latent(cfg, 16, torch.Generator().manual_seed(config.seed + 1)) if hasattr(cfg, "latent") else None
    fixed_labels = torch.arange(16) % len(family.LABELS) if family.LABELS else None
    schedules = [_lr_schedule(opt, cfg, steps) for opt in (opt_g, opt_d)]
    if resume is not None:
        for s in schedules:  # continue the schedule where it stopped: its lr is that of step `start`
            s.last_epoch = start
            for group, factor in zip(s.optimizer.param_groups, s.lr_lambdas):
                group["lr"] = group["initial_lr"] * factor(start)
    per_epoch = getattr(family, "EPOCH_SIZE", None)
    t0 = time.perf_counter() - elapsed
    G.train(), D.train()
    step_fn = getattr(family, "train_step", None) or functools.partial(gan_step, family)  # a family may own its step
    for step in range(start + 1, steps + 1):
        if should_stop is not None and should_stop():
            raise Cancelled(f"cancelled at step {step - 1} of {steps}")
        stats = step_fn(cfg, G, D, opt_g, opt_d, next(batches), gen)
        for s in schedules:
            s.step()
        if ema_g is not None:
            _update_ema(ema_g, G, cfg.ema)
        if step % config.progress_every == 0 or step == steps:
            report = Progress(
                step=step, steps=steps,
                epoch=step * stats["n"] / per_epoch if per_epoch else 0.0,
                loss_d=stats["loss_d"], loss_g=stats["loss_g"], acc_real=stats["acc_real"], acc_fake=stats["acc_fake"],
                seconds=time.perf_counter() - t0, extra=stats.get("extra", {}),
            )
            if config.snapshot_every and (step % config.snapshot_every == 0 or step == steps):
                report.snapshot = (family.snapshot(ema_g or G, cfg, config.data, config.seed)
                                   if hasattr(family, "snapshot") else _snapshot(ema_g or G, family, fixed_z, fixed_labels))
            history.append(report.point())
            if on_progress is not None:
                on_progress(report)
        if checkpoint_path is not None and config.checkpoint_every and step % config.checkpoint_every == 0:
            save(_checkpoint(config, cfg, G, D, ema_g, opt_g, opt_d, gen, rng, step, t0, history), checkpoint_path)
    checkpoint = _checkpoint(config, cfg, G, D, ema_g, opt_g, opt_d, gen, rng, steps, t0, history)
    if getattr(cfg, "d_refine", 0):
        refine_discriminator(checkpoint, cfg.d_refine, should_stop)
        checkpoint.seconds = time.perf_counter() - t0
    return checkpoint


@contextlib.contextmanager
def progress_bar(description: str):
    """A terminal progress bar for the command lines: yields train()'s on_progress callback."""
    from tqdm import tqdm

    bar = tqdm(desc=description, unit="step")

    def on_progress(p) -> None:
        bar.total = p.steps
        bar.n = p.step
        bar.set_postfix(loss_d=f"{p.loss_d:.3f}", loss_g=f"{p.loss_g:.3f}", acc_real=f"{p.acc_real:.2f}",
                        acc_fake=f"{p.acc_fake:.2f}")

    try:
        yield on_progress
    finally:
        bar.close()


def refine_discriminator(checkpoint: Checkpoint, steps: int, should_stop: Callable[[], bool] | None = None) -> None:
    """Train the exported D alone, against the frozen G that is served, so `nice` ranks what users get.

    At the end of training D is tuned to the raw G of the last few steps, not to the EMA G with fresh
    batch-norm statistics that is served, and it sits at an equilibrium where its scores say little
    about sample quality. A few steps against the served G, with unsmoothed targets, make it an
    estimate of real against served (Azadi et al. 2019, "Discriminator Rejection Sampling", §4).
    Only a few: run longer, it learns the served G's quirks and `nice` gets worse again (measured per
    family, 300-3,000 steps; each family's `d_refine` default is its best).
    """
    cfg, G, D = checkpoint.family_config, checkpoint.generator, checkpoint.discriminator
    family, seed = get_family(checkpoint.config.family), checkpoint.config.seed + 3  # streams of its own
    batches = family.real_batches(cfg, checkpoint.config.data, np.random.default_rng(seed))
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(D.parameters(), lr=cfg.lr, betas=(getattr(cfg, "beta1", 0.5), 0.999))
    D.train()
    for step in range(steps):
        if should_stop is not None and should_stop():
            raise Cancelled(f"cancelled while refining the discriminator ({step} of {steps} steps)")
        real, labels = next(batches)
        with torch.no_grad():
            z = sample_latent(cfg, real.shape[0], gen)
            fake = G(z, labels) if family.LABELS else G(z)
        d_real = D(real, labels) if family.LABELS else D(real)
        d_fake = D(fake, labels) if family.LABELS else D(fake)
        loss = (F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real))
                + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake)))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    D.eval()
    log.info("refined D for %d steps against the served G: last loss %.3f", steps, loss.item())


def gan_step(family, cfg, G, D, opt_g, opt_d, batch, gen: torch.Generator) -> dict:
    """One step of a family with one G taking z latents and one D: D on real and fake, then G.

    A family that trains otherwise (two generators, no latents) declares its own `train_step` with this
    signature, after the family argument, and returns the same dict: n, loss_d, loss_g, acc_real,
    acc_fake, and optionally `extra` (more losses for the progress reports).
    """
    real, labels = batch  # labels: the data's, or for a coded family each image's cluster
    coded = getattr(cfg, "codes", 0) > 0  # an unconditional G with a cluster code (see LatentCode)
    n = real.shape[0]
    # Discriminator: real (smoothed targets) against detached fakes.
    z = sample_latent(cfg, n, gen)
    fake = G(z, labels) if family.LABELS else G(z)
    fake_labels = G.code.index(z) if coded else labels  # a coded G's cluster comes from its latent
    d_real = D(real, labels) if labels is not None else D(real)
    d_fake = D(fake.detach(), fake_labels) if labels is not None else D(fake.detach())
    loss_d = (F.binary_cross_entropy_with_logits(d_real, torch.full_like(d_real, cfg.label_smoothing))
              + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake)))
    if hasattr(family, "aux_loss"):  # a family's auxiliary classifier (mnist-cgan's AC-GAN option)
        loss_d = loss_d + family.aux_loss(cfg, D, real, labels, real=True)
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()
    # Generator: the non-saturating loss (flipped labels), on its own batch.
    m = getattr(cfg, "g_batch_size", n)
    z = sample_latent(cfg, m, gen)
    g_labels = random_labels(family, m, gen)
    fake = G(z, g_labels) if family.LABELS else G(z)
    g_labels = G.code.index(z) if coded else g_labels
    g_out = D(fake, g_labels) if g_labels is not None else D(fake)
    loss_g = F.binary_cross_entropy_with_logits(g_out, torch.ones_like(g_out))
    if hasattr(family, "aux_loss"):
        loss_g = loss_g + family.aux_loss(cfg, D, fake, g_labels, real=False)
    if hasattr(family, "g_penalty"):  # a family's regulariser of G alone (mnist-cgan's mode seeking)
        loss_g = loss_g + family.g_penalty(cfg, G, z, g_labels, fake, gen)
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_g.step()
    return {"n": n, "loss_d": loss_d.item(), "loss_g": loss_g.item(),
            "acc_real": float((d_real > 0).float().mean()), "acc_fake": float((d_fake < 0).float().mean())}


def _lr_schedule(opt, cfg, steps):
    """Constant lr, then a linear decay to 0 over the last `lr_decay` share of the steps."""
    decay = getattr(cfg, "lr_decay", 0.0)
    begin = steps * (1 - decay)

    def factor(step):
        if decay <= 0 or step <= begin:
            return 1.0
        return max(0.0, (steps - step) / max(1.0, steps - begin))

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


@torch.no_grad()
def _update_ema(ema_g, G, decay: float) -> None:
    for e, p in zip(ema_g.parameters(), G.parameters()):
        e.lerp_(p, 1 - decay)
    for e, b in zip(ema_g.buffers(), G.buffers()):
        e.copy_(b)


@torch.no_grad()
def _snapshot(G, family, z, labels) -> np.ndarray:
    was_training = G.training
    G.eval()
    out = (G(z, labels) if family.LABELS else G(z)).numpy()
    G.train(was_training)
    return out


@torch.no_grad()
def standing_stats(G: torch.nn.Module, family, family_config, seed: int, batches: int = 16, n: int = 256):
    """Re-estimate G's batch-norm statistics for its own (EMA) weights; a no-op without batch norm.

    The EMA copy's running statistics are those of the raw G's recent, different weights, and even
    the raw G's are a lagging average; averaging over fresh batches of the served weights themselves
    fixes both ("standing statistics", as in BigGAN). Its own seeded generator: the training streams
    are untouched, so a resumed run stays the same run.
    """
    norms = [m for m in G.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return G
    gen = torch.Generator().manual_seed(seed + 2)
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the batches below
    G.train()
    for _ in range(batches):
        z = sample_latent(family_config, n, gen)
        G(z, random_labels(family, n, gen)) if family.LABELS else G(z)
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    return G.eval()


def _checkpoint(config, cfg, G, D, ema_g, opt_g, opt_d, gen, rng, step, t0, history) -> Checkpoint:
    served = copy.deepcopy(ema_g if ema_g is not None else G).eval()
    standing_stats(served, get_family(config.family), cfg, config.seed)
    state = {
        "G": G.state_dict(), "D": D.state_dict(), "ema": ema_g.state_dict() if ema_g is not None else None,
        "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(),
        "gen": gen.get_state(), "rng": rng.bit_generator.state,
        "torch": torch.get_rng_state(),  # dropout draws from torch's global generator
    }
    return Checkpoint(config=config, family_config=cfg, generator=served, discriminator=copy.deepcopy(D).eval(),
                      step=step, seconds=time.perf_counter() - t0, history=list(history), state=copy.deepcopy(state))


def _load_state(state, G, D, ema_g, opt_g, opt_d, gen, rng) -> None:
    G.load_state_dict(state["G"])
    D.load_state_dict(state["D"])
    if ema_g is not None and state["ema"] is not None:
        ema_g.load_state_dict(state["ema"])
    opt_g.load_state_dict(state["opt_g"])
    opt_d.load_state_dict(state["opt_d"])
    gen.set_state(state["gen"])
    rng.bit_generator.state = state["rng"]
    if state.get("torch") is not None:
        torch.set_rng_state(state["torch"])


def save(checkpoint: Checkpoint, path: Path) -> None:
    """Write a checkpoint atomically (temp file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"config": checkpoint.config.to_dict(), "step": checkpoint.step, "seconds": checkpoint.seconds,
                "history": checkpoint.history, "state": checkpoint.state}, tmp)
    tmp.replace(path)


def load(path: Path) -> Checkpoint:
    """A checkpoint written by save(), rebuilt into modules."""
    raw = torch.load(path, weights_only=False)
    config = TrainConfig.from_dict(raw["config"])
    family, cfg, G, D = build(config)
    state = raw["state"]
    G.load_state_dict(state["ema"] if state["ema"] is not None else state["G"])
    D.load_state_dict(state["D"])
    standing_stats(G, family, cfg, config.seed)  # as train() serves it
    return Checkpoint(config=config, family_config=cfg, generator=G.eval(), discriminator=D.eval(),
                      step=raw["step"], seconds=raw["seconds"], history=raw["history"], state=state)
