"""Plans: sampling written once as generators of onnxruntime calls, and the driver that runs them.

A plan yields a Call for each onnxruntime call it needs, is sent that call's first output, and
returns its result. `run` drives a plan with any runner: `direct` (unbatched, as training and the
evaluator use) or the service's Batcher, which merges the calls of concurrent requests. The
event loop drives small plans with `run_async`, the same loop with the call awaited.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Awaitable, Callable, Generator

import numpy as np

from service.repository import Model
from service.sampling.samples import SamplingError

CHUNK = 128  # rows per onnxruntime call: the fastest batch per sample here (measured: 64-128 beat 1024
# by 15 %, as the activations stay in cache); the batcher's max_rows plays the same part


class Cancelled(RuntimeError):
    """The plan's client went away: its remaining calls are not made."""


@dataclass
class Call:
    """One onnxruntime call a plan needs: the session, its inputs, and names for metrics."""
    session: object
    feed: dict[str, np.ndarray]
    model: str
    network: str  # "generator" | "discriminator"
    cancel: threading.Event | None = None  # set when the request is abandoned: the batcher drops what is left


Plan = Generator[Call, np.ndarray, object]
Runner = Callable[[Call], np.ndarray]


def direct(call: Call) -> np.ndarray:
    """onnxruntime calls of at most CHUNK rows, unbatched."""
    rows = len(next(iter(call.feed.values())))
    if rows <= CHUNK:
        return call.session.run(None, call.feed)[0]
    return np.concatenate([call.session.run(None, {k: v[i:i + CHUNK] for k, v in call.feed.items()})[0]
                           for i in range(0, rows, CHUNK)])


def run(plan: Plan, runner: Runner = direct, cancel: threading.Event | None = None):
    """Drive a plan to its result, each call made by runner (blocking); Cancelled once `cancel` is set."""
    try:
        call = next(plan)
        while True:
            if cancel is not None:
                if cancel.is_set():
                    raise Cancelled("the client went away; sampling stopped")
                call.cancel = cancel
            call = plan.send(runner(call))
    except StopIteration as done:
        return done.value


async def run_async(plan: Plan, runner: Callable[[Call], Awaitable[np.ndarray]]):
    """The same driver on the event loop: each call awaited, no thread held while it runs."""
    try:
        call = next(plan)
        while True:
            call = plan.send(await runner(call))
    except StopIteration as done:
        return done.value


def generate(model: Model, z: np.ndarray, labels: np.ndarray | None) -> Plan:
    """Plan: generator output for latents (and labels), in one call (the runner splits it)."""
    if len(z) == 0:
        return np.zeros((0, *model.card.sample_shape), np.float32)
    feed = {"z": z} if labels is None else {"z": z, "label": labels}
    return (yield Call(model.generator, feed, model.name, "generator"))


def score(model: Model, samples: np.ndarray, labels: np.ndarray | None) -> Plan:
    """Plan: discriminator logits (n,) for samples (and labels), in one call (the runner splits it)."""
    if model.discriminator is None:
        raise SamplingError(f"mode: model {model.name!r} has no discriminator; use mode 'plain'")
    if len(samples) == 0:
        return np.zeros((0,), np.float32)
    feed = {"sample": samples} if labels is None else {"sample": samples, "label": labels}
    return (yield Call(model.discriminator, feed, model.name, "discriminator")).reshape(-1)
