"""onnxruntime sessions with the intra-op threads that fit the model, chosen by measuring it at load.

A small model runs fastest on one thread: a second costs more to wake than it saves. A heavy one
(the keras-dcgan generator, 96 MFLOP per image) at a batch of 64 runs nearly twice as fast on two.
So each network gets a one-thread session and, where the machine has more cores, a session with a
thread per core; at load both are timed at the batch sizes the batcher makes, and the wide one
serves the batches from the smallest size on which it was clearly faster (never, if it never was:
then it is dropped). The one-thread session never spins: spinning would burn the cores that request
handling and the other sessions need between small calls. The wide one does while it runs (a batch of 64 on
two spinning threads takes 4.7 ms where two that sleep take 6.7–8.9 and one thread 7.5, measured on
mnist-dcgan's G): it serves only batches it was measured clearly faster on, and on a busy machine, where
spinning loses, it is measured slower and dropped. The outputs are the same bytes whichever session runs a row (a test checks).

The execution providers are configured (GANSERVE_ORT_PROVIDERS, in order of preference); one this
onnxruntime build lacks is dropped with one warning when the app starts, and the CPU is always the last resort.
On a GPU provider threads are not measured: the device does the work, one CPU thread feeds it.
"""
from __future__ import annotations

import ctypes
import logging
import os
import time

import numpy as np
import onnxruntime as ort
from pydantic import BaseModel, Field

log = logging.getLogger(__name__)
CPU = "CPUExecutionProvider"
PROVIDERS = (CPU,)
# Per provider: the most rows merged into one call and how long a batch waits for more. A GPU call costs
# about the same for 1 row as for hundreds, so it wants bigger batches and may wait a little longer for them.
BATCHING = {CPU: (128, 2.0), "CUDAExecutionProvider": (1024, 4.0), "TensorrtExecutionProvider": (1024, 4.0),
            "ROCMExecutionProvider": (1024, 4.0)}
ROWS = (1, 8, 32, 128)  # batch sizes timed at load: one request alone up to the batcher's full batch
CLEARLY = 0.85  # the wide session must take at most this share of the narrow one's time to be used
_SHRINK = ort.RunOptions()
_SHRINK.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")


def session_options(threads: int, spin: bool = False) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return options


def available(requested: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The requested providers this onnxruntime has, in order, the CPU last; each missing one is logged. The app
    asks once at start and loads every network with the answer, so a missing provider is logged once, not once
    per network."""
    have = set(ort.get_available_providers())
    chosen = [p for p in requested if p in have]
    for missing in (p for p in requested if p not in have):
        log.warning("onnxruntime provider %s is not available here (this onnxruntime has %s): using %s",
                    missing, ", ".join(sorted(have)), ", ".join(chosen or [CPU]))
    return tuple(chosen) if CPU in chosen else (*chosen, CPU)


def batching(providers: tuple[str, ...] | list[str]) -> tuple[int, float]:
    """(max rows, max wait in ms) of the batcher for the first of these providers that is available."""
    return BATCHING.get(available(providers)[0], BATCHING[CPU])


class Threads(BaseModel):
    """What a network runs on, and why: shown per version in /v1/models."""
    provider: str = Field(CPU, description="the onnxruntime execution provider the network runs on (the first "
                          "of GANSERVE_ORT_PROVIDERS this machine has)")
    threads: list[int] = Field(description="intra-op threads of its sessions: [1], or [1, cores]")
    wide_from_rows: int | None = Field(description="batches of at least this many rows run on the wide session; "
                                       "None: all on one thread")
    ms_by_rows: dict[int, list[float]] = Field(default_factory=dict, description="rows -> ms per call measured "
                                               "at load (the fastest of a few): one thread, then one per core")
    chosen: str = Field(description="'measured', or 'configured' (GANSERVE_ORT_THREADS)")


class Network:
    """One ONNX network as the service runs it: session.run's signature, the session chosen by the rows."""

    def __init__(self, path: str, threads: int = 0, cores: int | None = None, providers=PROVIDERS):
        """threads 0: one thread measured against `cores` (default: this machine's); n > 0: n threads."""
        providers = list(available(providers))
        self.narrow = ort.InferenceSession(path, session_options(threads or 1), providers=providers)
        provider = self.narrow.get_providers()[0]
        self.wide: ort.InferenceSession | None = None
        self.wide_from: int | None = None
        cores = cores or os.cpu_count() or 1
        if threads or cores == 1 or provider != CPU:
            timings = _time([self.narrow])
        else:
            wide = ort.InferenceSession(path, session_options(cores, spin=True), providers=providers)
            timings = _time([self.narrow, wide])
            faster = [rows for rows, (n, w) in timings.items() if w <= CLEARLY * n]
            # From the smallest size on which wide won, provided it also won on every larger one.
            wins = [rows for rows in timings if all(r in faster for r in timings if r >= rows)]
            if wins:
                self.wide, self.wide_from = wide, min(wins)
        self.timings = timings
        self.threads = Threads(
            provider=provider, threads=[threads] if threads else [1, cores] if self.wide is not None else [1],
            wide_from_rows=self.wide_from, chosen="configured" if threads else "measured",
            ms_by_rows={rows: [round(t * 1e3, 4) for t in times] for rows, times in timings.items()})

    def _session(self, rows: int):
        return self.wide if self.wide is not None and rows >= self.wide_from else self.narrow

    def run(self, output_names, feed: dict[str, np.ndarray]):
        return self._session(len(next(iter(feed.values())))).run(output_names, feed)

    def seconds(self, rows: int) -> float:
        """What a call of `rows` rows takes, as measured at load (the next measured size up); inf beyond."""
        for measured, times in sorted(self.timings.items()):
            if measured >= rows:
                return times[-1] if self._session(rows) is self.wide else times[0]
        return float("inf")

    def get_inputs(self):
        return self.narrow.get_inputs()

    def get_outputs(self):
        return self.narrow.get_outputs()


def _time(sessions: list, budget: float = 0.25) -> dict[int, tuple[float, ...]]:
    """rows -> seconds per call of each session on random inputs of the network's shapes: the fastest of
    a few alternating calls (the minimum, since what else runs only ever adds time). Sizes are tried in
    turn and stop growing once a call takes longer than `budget`."""
    timings: dict[int, tuple[float, ...]] = {}
    rng = np.random.default_rng(0)
    for rows in ROWS:
        feed = {}
        for spec in sessions[0].get_inputs():
            shape = [rows, *(d if isinstance(d, int) else 1 for d in spec.shape[1:])]
            feed[spec.name] = (np.zeros(shape, np.int64) if "int" in spec.type
                               else rng.uniform(-1, 1, shape).astype(np.float32))
        times: list[list[float]] = [[] for _ in sessions]
        for session in sessions:
            session.run(None, feed)  # warm-up: the first call allocates
        spent_until = time.perf_counter() + budget
        # At least 5 rounds: with 3 the choice flipped between two starts on this machine (whose speed drifts).
        while len(times[0]) < 5 or (len(times[0]) < 20 and time.perf_counter() < spent_until):
            for session, out in zip(sessions, times, strict=True):
                start = time.perf_counter()
                session.run(None, feed)
                out.append(time.perf_counter() - start)
        timings[rows] = tuple(min(t) for t in times)
        if timings[rows][0] > budget:
            break
    # The timed batches grew each session's memory arena: give it back (once; shrinking after every large
    # call instead fragmented the heap: 0.55 GB under the memory benchmark's load against 0.3 without).
    for session in sessions:
        session.run(None, {name: value[:1] for name, value in feed.items()}, _SHRINK)
    trim_heap()
    return timings


def trim_heap() -> None:
    """Hand freed heap memory back to the system: glibc keeps it otherwise (measured with every shipped model
    loaded: 219 MB RSS before, 144 MB after). Nothing to do where the C library has no malloc_trim."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass
