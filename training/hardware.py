"""Where a training run runs: its device, its mixed precision, and torch's threads on the CPU.

Threads are measured, as serving measures its sessions (service/repository/sessions.py): a small model's step is
over before a second thread has woken, and on a loaded machine every extra thread waits for a core at each of
torch's barriers (quadratic on two busy cores: 152 steps/s on one thread, 15 on two). So a run times its own
first steps alternately on one thread and on more, up to its share of the cores (cores ÷ the training workers
sharing them, never more), and keeps the fastest, preferring fewer threads unless more are clearly faster. The
measured steps are real training steps: nothing is spent on the choice but the slower option's few steps. A long
run measures again every AGAIN_SECONDS, since the load it met at its start does not last, and at once when the
chosen option's steps turn out slower than the option it beat (a few steps timed in a lucky moment of a busy machine
once chose two threads that then ran five times slower than one).
A step's float sums depend on its thread count, so a run whose threads are measured is reproducible only up to
rounding (and Adam's first steps can amplify that): a run that must be bit-identical fixes them
(GANSERVE_TRAIN_THREADS, `ganserve train --threads`).
"""
from __future__ import annotations

import contextlib
import logging
import os
import statistics
import time
from typing import Callable, Iterator, TypeVar

import torch

log = logging.getLogger(__name__)
DEVICES = ("auto", "cpu", "cuda")
WARM = 2  # steps before measuring: the first ones allocate
ROUNDS = (3, 12)  # rounds of one step per option: at least, at most
BUDGET = 1.0  # seconds of measuring past the least rounds, while no option is plainly the best
CLEARLY = 0.85  # more threads must take at most this share of fewer threads' time per step to be kept
PLAINLY = 0.5  # after the least rounds, an option taking under this share of every other's time wins at once
AT_ONCE = 0.2  # one thread taking under this share of every wider option's time wins after a single round
AGAIN_SECONDS = 120.0  # a long run measures again this often: other work comes and goes while it trains
WATCH = 16  # once chosen, steps timed per check that the choice still beats the options it was measured against
T = TypeVar("T")


def cores() -> int:
    """The cores this process may run on (a container's or taskset's limit, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def thread_cap(workers: int = 1, cores_here: int | None = None) -> int:
    """The most threads one run may take: its share of the cores among the workers sharing them."""
    return max(1, (cores_here or cores()) // max(1, workers))


def devices() -> list[str]:
    """The devices this machine can train on, as a worker advertises them."""
    return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]


def resolve(name: str) -> torch.device:
    """auto: CUDA when torch sees a GPU, else the CPU; ValueError (naming `device`) for one this machine lacks."""
    if name not in DEVICES:
        raise ValueError(f"device: must be one of {', '.join(DEVICES)}, got {name!r}")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device: cuda was asked for, but torch sees no GPU on this machine")
    return torch.device(name)


def precision(device: torch.device) -> str | None:
    """The mixed precision a step runs under: bf16 autocast on a GPU that has it (no loss scaling needed, and the
    losses, computed from logits, are kept in float32 by autocast); None: float32 throughout."""
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return "bf16"
    return None


def autocast(device: torch.device):
    """The context a training step runs in on `device`."""
    if precision(device) == "bf16":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def on_device(batches: Iterator[tuple], device: torch.device) -> Iterator[tuple]:
    """A family's batches (tuples of tensors or None) moved to the device as they are drawn."""
    for batch in batches:
        yield tuple(t.to(device, non_blocking=True) if isinstance(t, torch.Tensor) else t for t in batch)


class Threads:
    """torch's threads for one run: fixed, or chosen by timing the run's first steps (see the module's text)."""

    def __init__(self, fixed: int = 0, workers: int = 1, cores_here: int | None = None, gpu: bool = False,
                 again_seconds: float = AGAIN_SECONDS):
        self.again_seconds, self.measurements, self.chosen_at = again_seconds, 0, 0.0
        self.previous: int | None = None  # the last measurement's choice, while measuring again
        self.cores = cores_here or cores()
        self.cap = thread_cap(workers, self.cores)
        self.workers = workers
        self.options = sorted({1, min(2, self.cap), self.cap})
        self.times: dict[int, list[float]] = {n: [] for n in self.options}
        self.steps = 0
        self.started: float | None = None
        self.watched: list[float] = []  # the chosen option's latest steps
        self.chosen: int | None
        if fixed:
            self.chosen, self.how = fixed, "configured"
        elif gpu:  # the device does the work; one CPU thread feeds it
            self.chosen, self.how = 1, "one thread feeds the GPU"
        elif len(self.options) == 1:
            self.chosen, self.how = 1, "one core per worker"
        else:
            self.chosen, self.how = None, "measured"
        torch.set_num_threads(self.chosen or 1)

    def run(self, step: Callable[[], T]) -> T:
        """One training step, timed on the option whose turn it is while the choice is open."""
        if self.chosen is not None and self.how == "measured" and \
                time.perf_counter() - self.chosen_at > self.again_seconds:
            self.again()
        if self.chosen is not None:
            if self.how != "measured":
                return step()
            begin = time.perf_counter()
            out = step()
            self._watch(time.perf_counter() - begin)
            return out
        self.steps += 1
        if self.steps <= WARM:
            return step()
        if self.started is None:
            self.started = time.perf_counter()
        option = self.options[(self.steps - WARM - 1) % len(self.options)]
        torch.set_num_threads(option)
        begin = time.perf_counter()
        out = step()
        self.times[option].append(time.perf_counter() - begin)
        rounds = min(len(t) for t in self.times.values())
        if rounds >= ROUNDS[1] or (rounds >= 1 and self._plain(rounds)) or (
                rounds >= ROUNDS[0] and time.perf_counter() - self.started > BUDGET):
            self._choose()
        return out

    def _watch(self, seconds: float) -> None:
        """Measure again as soon as the chosen option's typical step is one another option would clearly beat, as
        timed when the choice was made."""
        self.watched.append(seconds)
        if len(self.watched) < WATCH:
            return
        typical, self.watched = statistics.median(self.watched), []
        others = [statistics.median(t) for n, t in self.times.items() if n != self.chosen and t]
        if others and CLEARLY * typical > min(others):
            self.again()

    def again(self) -> None:
        """Open the choice again (no warm-up: the run is warm); until it is made, the last choice is what ran."""
        self.previous, self.chosen, self.started = self.chosen, None, None
        self.times = {n: [] for n in self.options}

    def _plain(self, rounds: int) -> bool:
        """Whether one option is so much faster that more steps of the others would only waste time: on a busy
        machine a second thread is often a hundred times slower, and its timed steps are the whole cost of
        choosing. One round suffices to keep one thread (the safe choice); more threads need the least rounds."""
        typical = {n: statistics.median(t) for n, t in self.times.items()}
        narrow, wider = typical[self.options[0]], min(typical[n] for n in self.options[1:])
        if narrow < AT_ONCE * wider:
            return True
        ranked = sorted(typical.values())
        return rounds >= ROUNDS[0] and ranked[0] < PLAINLY * ranked[1]

    def _choose(self) -> None:
        # The median: a loaded machine makes a few steps of each option lucky; the typical step is what a run gets.
        typical = {n: statistics.median(t) for n, t in self.times.items() if t}
        chosen = self.options[0]
        for n in self.options[1:]:
            if n in typical and typical[n] <= CLEARLY * typical[chosen]:
                chosen = n
        self.chosen, self.chosen_at, self.watched = chosen, time.perf_counter(), []
        self.measurements += 1
        torch.set_num_threads(chosen)
        log.info("training on %d thread(s) of %d cores (%d worker(s)): ms per step %s", chosen, self.cores,
                 self.workers, {n: round(t * 1e3, 3) for n, t in typical.items()})

    def finish(self) -> None:
        """A run that ended before the choice was made: the best so far is what it is reported to have run on."""
        if self.chosen is not None:
            return
        if all(self.times.values()):
            self._choose()
        elif self.previous is not None:  # a measurement again, cut short: the last choice stands
            self.chosen = self.previous
        else:  # too few steps to time every option: it ran on one thread
            self.chosen, self.how = 1, "too few steps to measure"

    def report(self) -> dict:
        """What runs (while measuring: the options timed so far), for the job's record and the card's lineage."""
        out = {"threads": self.chosen or 1, "threads_chosen": self.how if self.chosen else "measuring",
               "cores": self.cores,
               "workers": self.workers, "thread_cap": self.cap}
        if self.measurements > 1:
            out["measurements"] = self.measurements  # the threads and timings are the latest's
        if any(self.times.values()):
            out["ms_per_step"] = {str(n): round(statistics.median(t) * 1e3, 3) for n, t in self.times.items() if t}
        return out
