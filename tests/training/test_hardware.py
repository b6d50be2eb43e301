"""Training threads that fit the machine: never more than the run's share of the cores, and on a machine whose
cores are all busy, as fast as the better of one thread and two."""
from __future__ import annotations

import subprocess
import sys
import time

import pytest
import torch

from training import hardware
from training.config import TrainConfig
from training.trainer import train


@pytest.mark.parametrize("cores", [1, 2, 3, 4, 8, 16])
@pytest.mark.parametrize("workers", [1, 2, 3, 5])
def test_the_thread_choice_never_exceeds_cores_over_workers(cores, workers):
    cap = max(1, cores // workers)
    threads = hardware.Threads(workers=workers, cores_here=cores)
    assert threads.cap == cap and max(threads.options) <= cap
    a, b = torch.randn(64, 64), torch.randn(64, 64)
    seen = []
    for _ in range(hardware.WARM + hardware.ROUNDS[1] * len(threads.options) + 2):
        threads.run(lambda: seen.append(torch.get_num_threads()) or a @ b)
    report = threads.report()
    assert 1 <= report["threads"] <= cap and max(seen) <= cap
    assert report["threads_chosen"] == ("measured" if cap > 1 else "one core per worker")


def test_a_long_run_measures_again_and_stays_within_its_share():
    threads = hardware.Threads(workers=1, cores_here=2, again_seconds=0.0)  # every step after a choice: again
    a, b = torch.randn(64, 64), torch.randn(64, 64)
    seen = []
    for _ in range(60):
        threads.run(lambda: seen.append(torch.get_num_threads()) or a @ b)
    threads.finish()
    report = threads.report()
    assert report["measurements"] >= 2 and report["threads_chosen"] == "measured"
    assert max(seen) <= 2 and report["threads"] in (1, 2)


def test_a_choice_its_steps_then_belie_is_measured_again_at_once():
    threads = hardware.Threads(workers=1, cores_here=2)  # options 1 and 2; nothing measures again for two minutes
    cost = {1: 0.004, 2: 0.001}  # seconds a step takes on each count: two threads win the first measurement

    def step():
        time.sleep(cost[torch.get_num_threads()])
    while threads.chosen is None:
        threads.run(step)
    assert threads.chosen == 2
    cost[2] = 0.02  # the load changes: two threads now take five times one thread's measured step
    for _ in range(hardware.WATCH + 2 * hardware.ROUNDS[1]):
        threads.run(step)
    assert threads.chosen == 1 and threads.report()["measurements"] == 2


def test_a_run_reports_its_device_and_threads_and_a_fixed_count_is_kept():
    checkpoint = train(TrainConfig(family="quadratic", steps=30, threads=1, device="cpu"), workers=1)
    assert checkpoint.hardware["device"] == "cpu" and checkpoint.hardware["precision"] is None
    assert checkpoint.hardware["threads"] == 1 and checkpoint.hardware["threads_chosen"] == "configured"
    shared = train(TrainConfig(family="quadratic", steps=30, device="cpu"), workers=hardware.cores())
    assert shared.hardware["threads"] == 1 and shared.hardware["threads_chosen"] == "one core per worker"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_refused_naming_the_device():
    with pytest.raises(ValueError, match="device: cuda"):
        hardware.resolve("cuda")
    assert hardware.resolve("auto").type == "cpu" and hardware.devices() == ["cpu"]


def steps_per_second(threads: int, steps: int) -> float:
    checkpoint = train(TrainConfig(family="quadratic", steps=steps, threads=threads, device="cpu",
                                   progress_every=steps), workers=1)
    return steps / checkpoint.history[-1]["seconds"]  # the loop alone, as the last report timed it


@pytest.mark.system
@pytest.mark.skipif(hardware.cores() < 2, reason="one core: there is nothing to choose")
def test_under_a_busy_machine_the_chosen_threads_train_as_fast_as_the_better_of_one_and_two():
    """A busy loop on every core (other jobs, other tests): the measured choice, its measuring included, must reach
    0.8 of the better fixed count, whichever that is here. The runs are interleaved and each count keeps its best,
    so a burst of other load on this machine does not decide the ratio (one run's rate varies by a third here)."""
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(hardware.cores())]
    try:
        time.sleep(0.5)
        rates: dict[str, list[float]] = {"1": [], "2": [], "auto": []}
        for repeat in range(3):
            # Two threads run up to a hundred times slower here: fewer steps give their rate as well. The others
            # run 2,000 steps (5 s), nearer the README's job (3,000): measuring costs a few of the slower option's
            # steps whatever the run's length, up to a fifth of a 1,000-step run when two threads take 200 ms a step.
            for name, threads, steps in (("1", 1, 2000), ("2", 2, 40), ("auto", 0, 2000)):
                if name != "2" or repeat < 2:
                    rates[name].append(steps_per_second(threads, steps))
    finally:
        for process in busy:
            process.kill()
            process.wait()
    best = {name: max(r) for name, r in rates.items()}
    assert best["auto"] >= 0.8 * max(best["1"], best["2"]), best
