"""Threads that fit the model: each network measured at load, the session chosen by a batch's rows, the same
bytes whichever session runs them; and a lone small call run inline, also the same bytes."""
from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from service.repository import Network, session_options
from service.repository.sessions import ROWS
from service.sampling.batching import Batcher
from service.sampling.plans import Call

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "models").glob("*/*/*.onnx"))


def feed_for(session, rows: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    feed = {}
    for spec in session.get_inputs():
        shape = [rows, *(d if isinstance(d, int) else 1 for d in spec.shape[1:])]
        feed[spec.name] = (rng.integers(0, 2, shape).astype(np.int64) if "int" in spec.type
                           else rng.uniform(-1, 1, shape).astype(np.float32))
    return feed


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: f"{p.parent.parent.name}/{p.parent.name}/{p.stem}")
def test_one_thread_and_two_give_the_same_bytes(path):
    """The premise of choosing threads per batch: a row's output does not depend on the session's threads,
    nor on the rows beside it, for every shipped network."""
    narrow = ort.InferenceSession(str(path), session_options(1), providers=["CPUExecutionProvider"])
    wide = ort.InferenceSession(str(path), session_options(2), providers=["CPUExecutionProvider"])
    feed = feed_for(narrow, 64)
    together = narrow.run(None, feed)[0]
    assert wide.run(None, feed)[0].tobytes() == together.tobytes()
    alone = wide.run(None, {k: v[:1] for k, v in feed.items()})[0]
    assert alone.tobytes() == together[:1].tobytes()


def test_a_measured_network_says_what_it_chose_and_runs_by_rows():
    path = str(ROOT / "models/mnist-dcgan/1/generator.onnx")
    network = Network(path, threads=0, cores=2)
    chosen = network.threads
    assert chosen.chosen == "measured" and set(chosen.ms_by_rows) <= set(ROWS) and 1 in chosen.ms_by_rows
    assert all(len(times) == 2 and min(times) > 0 for times in chosen.ms_by_rows.values())
    if network.wide is None:
        assert chosen.threads == [1] and chosen.wide_from_rows is None
    else:
        assert chosen.threads == [1, 2] and chosen.wide_from_rows in ROWS
        # From wide_from on, every measured size was clearly faster on the wide session.
        assert all(w < n for rows, (n, w) in chosen.ms_by_rows.items() if rows >= chosen.wide_from_rows)

    # Force a split at 8 rows to see the dispatch: below it the one-thread session runs, from it the wide one.
    seven, eight = feed_for(network, 7), feed_for(network, 8)
    ran: list[str] = []
    network.narrow = Named(network.narrow, "narrow", ran)
    network.wide = Named(ort.InferenceSession(path, session_options(2), providers=["CPUExecutionProvider"]), "wide", ran)
    network.wide_from = 8
    network.run(None, seven)
    network.run(None, eight)
    assert ran == ["narrow", "wide"]


class Named:
    """A session that notes its name in `ran` when it runs."""

    def __init__(self, session, name: str, ran: list[str]):
        self.session, self.name, self.ran = session, name, ran

    def run(self, outputs, feed):
        self.ran.append(self.name)
        return self.session.run(outputs, feed)


def test_configured_threads_are_not_measured_against_more():
    network = Network(str(ROOT / "models/quadratic/1/generator.onnx"), threads=1)
    assert network.wide is None and network.threads.threads == [1] and network.threads.chosen == "configured"
    assert 0 < network.seconds(1) < float("inf")
    assert network.seconds(10**6) == float("inf")  # beyond what was measured: never inline


class Recording:
    """A network recording the thread each call ran on."""

    def __init__(self, network: Network):
        self.network, self.threads = network, []

    def run(self, outputs, feed):
        self.threads.append(threading.current_thread().name)
        return self.network.run(outputs, feed)

    def seconds(self, rows):
        return self.network.seconds(rows)


def test_a_lone_small_call_runs_inline_and_concurrent_ones_are_batched_with_the_same_bytes():
    network = Recording(Network(str(ROOT / "models/mnist-dcgan/1/generator.onnx"), threads=1))
    batcher = Batcher(max_rows=64, max_wait=0.005, max_queue=64, inline_seconds=1.0)
    feeds = [feed_for(network.network, 1, seed) for seed in range(6)]
    alone = [network.network.run(None, f)[0] for f in feeds]

    async def one(feed):
        with batcher.sampling("m"):
            return await batcher.run_async(Call(network, feed, "m", "generator"))

    async def main():
        lone = await one(feeds[0])
        assert network.threads == [threading.current_thread().name]  # on the event loop's own thread
        together = await asyncio.gather(*(one(f) for f in feeds))
        return lone, together

    lone, together = asyncio.run(main())
    batcher.close()
    assert all(name.startswith("batch-m-") for name in network.threads[1:])  # the lane's thread
    assert len(network.threads) < 1 + len(feeds)  # merged: fewer calls than requests
    assert lone.tobytes() == alone[0].tobytes()
    assert [t.tobytes() for t in together] == [a.tobytes() for a in alone]


def test_no_call_runs_inline_when_inlining_is_off():
    network = Recording(Network(str(ROOT / "models/quadratic/1/generator.onnx"), threads=1))
    batcher = Batcher(max_rows=64, max_wait=0.0, max_queue=64, inline_seconds=0.0)

    async def main():
        with batcher.sampling("m"):
            return await batcher.run_async(Call(network, feed_for(network.network, 1), "m", "generator"))

    asyncio.run(main())
    batcher.close()
    assert network.threads == ["batch-m-generator"]
