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

from training import hardware
from training.config import TrainConfig, build_family_config
from training.families import get_family
from training.families.base import OptimizerConfig, sample_latent

log = logging.getLogger(__name__)


class TrainingCancelled(Exception):
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
    hardware: dict = field(default_factory=dict)  # device, threads and how they were chosen (training/hardware.py)


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
    hardware: dict = field(default_factory=dict)  # what the run runs on, so far (threads are chosen early on)

    def point(self) -> dict:
        """The report as one flat history point (no snapshot)."""
        out = {k: v for k, v in vars(self).items() if k not in ("snapshot", "extra", "hardware")}
        return {**out, **self.extra}


def build(config: TrainConfig):
    """The family, its validated Config, and fresh (G, D)."""
    family = get_family(config.family)
    family_config = family.configure(build_family_config(family.Config, config.params), config.data)
    torch.manual_seed(config.seed)
    return family, family_config, family.Generator(family_config), family.Discriminator(family_config)


def train(
    config: TrainConfig,
    on_progress: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    checkpoint_path: Path | None = None,
    resume: Checkpoint | None = None,
    workers: int = 1,
) -> Checkpoint:
    """Train one family; resumes from a checkpoint (same config) when given one. `workers`: the training
    processes sharing this machine's cores (a run takes at most its share)."""
    device = hardware.resolve(config.device)
    on_gpu = device.type != "cpu"
    threads = hardware.Threads(config.threads, workers, gpu=on_gpu)
    family, cfg, G, D = build(config)
    G, D = G.to(device), D.to(device)
    steps = config.steps or family.DEFAULT_STEPS
    opt_g, opt_d = family.optimizers(cfg, G, D)
    optimizer = OptimizerConfig.of(cfg)
    ema_g = copy.deepcopy(G).eval() if optimizer.ema > 0 else None
    # The latents are drawn on the device (a CPU generator cannot feed CUDA's sampling).
    gen = (torch.Generator(device=device) if on_gpu else torch.Generator()).manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    start, history, elapsed = 0, [], 0.0
    if resume is not None:
        start, history, elapsed = resume.step, list(resume.history), resume.seconds
        _load_state(resume.state, G, D, ema_g, opt_g, opt_d, gen, rng)
    batches = family.real_batches(cfg, config.data, rng)
    if on_gpu:
        batches = hardware.on_device(batches, device)
    placed = {"device": device.type, "precision": hardware.precision(device)}
    schedules = [_lr_schedule(opt, optimizer.lr_decay, steps) for opt in (opt_g, opt_d)]
    if resume is not None:
        for s in schedules:  # continue the schedule where it stopped: its lr is that of step `start`
            s.last_epoch = start
            for group, factor in zip(s.optimizer.param_groups, s.lr_lambdas):
                group["lr"] = group["initial_lr"] * factor(start)
    per_epoch = family.EPOCH_SIZE
    t0 = time.perf_counter() - elapsed
    G.train(), D.train()
    for step in range(start + 1, steps + 1):
        if should_stop is not None and should_stop():
            raise TrainingCancelled(f"cancelled at step {step - 1} of {steps}")
        batch = next(batches)  # drawn outside the device context: a family's loader makes CPU tensors
        with torch.device(device) if on_gpu else contextlib.nullcontext(), hardware.autocast(device):
            stats = threads.run(functools.partial(family.train_step, cfg, G, D, opt_g, opt_d, batch, gen))
        for s in schedules:
            s.step()
        if ema_g is not None:
            _update_ema(ema_g, G, optimizer.ema)
        if step % config.progress_every == 0 or step == steps:
            report = Progress(
                step=step, steps=steps,
                epoch=step * stats["n"] / per_epoch if per_epoch else 0.0,
                loss_d=stats["loss_d"], loss_g=stats["loss_g"], acc_real=stats["acc_real"], acc_fake=stats["acc_fake"],
                seconds=time.perf_counter() - t0, extra=stats.get("extra", {}), hardware={**placed, **threads.report()},
            )
            if config.snapshot_every and (step % config.snapshot_every == 0 or step == steps):
                shown = ema_g or G  # drawn on the CPU, from the family's own CPU generator
                report.snapshot = family.snapshot(copy.deepcopy(shown).cpu() if on_gpu else shown, cfg, config.data,
                                                  config.seed)
            history.append(report.point())
            if on_progress is not None:
                on_progress(report)
        if checkpoint_path is not None and config.checkpoint_every and step % config.checkpoint_every == 0:
            save(_checkpoint(config, cfg, G, D, ema_g, opt_g, opt_d, gen, rng, step, t0, history), checkpoint_path)
    checkpoint = _checkpoint(config, cfg, G, D, ema_g, opt_g, opt_d, gen, rng, steps, t0, history)
    threads.finish()
    checkpoint.hardware = {**placed, **threads.report()}
    refine = family.d_refine(cfg)
    if refine:
        refine_discriminator(checkpoint, refine, should_stop)
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
    optimizer = OptimizerConfig.of(cfg)
    opt = torch.optim.Adam(D.parameters(), lr=optimizer.lr, betas=optimizer.betas)
    D.train()
    for step in range(steps):
        if should_stop is not None and should_stop():
            raise TrainingCancelled(f"cancelled while refining the discriminator ({step} of {steps} steps)")
        real, labels = next(batches)
        labels = labels if family.conditional else None  # the served D of a coded family scores without a cluster
        with torch.no_grad():
            fake = family.generate(G, sample_latent(cfg, real.shape[0], gen), labels)
        d_real = D(real, labels) if labels is not None else D(real)
        d_fake = D(fake, labels) if labels is not None else D(fake)
        loss = family.discriminator_loss(d_real, d_fake, 1.0)  # unsmoothed: real against served
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    D.eval()
    log.info("refined D for %d steps against the served G: last loss %.3f", steps, loss.item())


def _lr_schedule(opt, decay: float, steps: int):
    """Constant lr, then a linear decay to 0 over the last `decay` share of the steps."""
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


def _checkpoint(config, cfg, G, D, ema_g, opt_g, opt_d, gen, rng, step, t0, history) -> Checkpoint:
    # The served copies live on the CPU, where export and its check against onnxruntime run, whatever trained them.
    served = copy.deepcopy(ema_g if ema_g is not None else G).cpu().eval()
    get_family(config.family).standing_stats(served, cfg, config.seed)
    state = {
        "G": G.state_dict(), "D": D.state_dict(), "ema": ema_g.state_dict() if ema_g is not None else None,
        "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(),
        "gen": gen.get_state(), "rng": rng.bit_generator.state,
        "torch": torch.get_rng_state(),  # dropout draws from torch's global generator
    }
    return Checkpoint(config=config, family_config=cfg, generator=served, discriminator=copy.deepcopy(D).cpu().eval(),
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
    raw = torch.load(path, weights_only=False, map_location="cpu")  # trained on a GPU, loadable anywhere
    config = TrainConfig.from_dict(raw["config"])
    family, cfg, G, D = build(config)
    state = raw["state"]
    G.load_state_dict(state["ema"] if state["ema"] is not None else state["G"])
    D.load_state_dict(state["D"])
    family.standing_stats(G, cfg, config.seed)  # as train() serves it
    return Checkpoint(config=config, family_config=cfg, generator=G.eval(), discriminator=D.eval(),
                      step=raw["step"], seconds=raw["seconds"], history=raw["history"], state=state)
