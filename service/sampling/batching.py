"""Dynamic batching: concurrent requests for one session merged into one onnxruntime call.

Each onnxruntime session gets a lane: a queue and one thread that takes what is queued (up to
`max_rows` rows), runs it as one batch and hands each request its own rows back, in order. While
a batch runs, the next one queues up, so the batch size follows the load. A lane waits up to
`max_wait` for more rows only while more requests of the same model are sampling than the batch
holds, so a lone request never pays the wait. Rows of one request never depend on the rows beside
them (latents come from (seed, index), and the kernels are row-independent: a test checks that
the bytes do not change with concurrency). A call bigger than `max_rows` runs over several batches,
shortest remaining call first, so small requests keep flowing beside a large one; and one batch at
a time per session keeps onnxruntime from running a dozen at once on two cores.

A lone small call skips the lane: when no other request of the model is sampling, the lane holds
nothing, and the call is measured to take at most `inline_seconds`, it runs right on the event loop,
as an unbatched server would. Handing it to the lane's thread and back costs two thread wake-ups,
more than the inference of one small image (measured: ~0.5 ms a request on this machine).

Admission is bounded per model: past `max_queue` requests in flight, `admit` raises Overloaded
(503 with Retry-After) instead of letting latency grow without bound.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Callable

import anyio
import numpy as np

from service.sampling import metrics
from service.sampling.plans import Call, Cancelled

log = logging.getLogger(__name__)


class Overloaded(RuntimeError):
    """Too many requests queued for a model; retry after `retry_after` seconds."""

    def __init__(self, message: str, retry_after: int = 1):
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class _Item:
    feed: dict[str, np.ndarray]
    rows: int
    settle: Callable[[np.ndarray | None, BaseException | None], None]  # called on the lane's thread
    cancel: threading.Event | None = None  # set when the request was abandoned
    queued: float = field(default_factory=time.perf_counter)
    done: int = 0  # rows already run: a call bigger than max_rows runs over several batches
    outs: list[np.ndarray] = field(default_factory=list)

    @property
    def left(self) -> int:
        return self.rows - self.done


class _Lane:
    """One session's queue and the thread that runs its batches."""

    def __init__(self, session, model: str, network: str, batcher: "Batcher"):
        self.session, self.model, self.network, self.batcher = session, model, network, batcher
        self.queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self.pending: list[_Item] = []  # taken from the queue, not finished
        self.lock = threading.Lock()  # one onnxruntime call at a time per session: the lane's or an inline one
        self.thread = threading.Thread(target=self._loop, name=f"batch-{model}-{network}", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        pending = self.pending
        while True:
            if not pending:
                item = self.queue.get()
                if item is None:  # stop
                    return
                pending.append(item)
            if not self._gather(pending):
                for item in pending:
                    item.settle(None, RuntimeError("the batcher stopped"))
                return
            for item in [item for item in pending if item.cancel is not None and item.cancel.is_set()]:
                item.done = item.rows  # an abandoned request's remaining rows are never run
                item.settle(None, Cancelled("the client went away; sampling stopped"))
            pending[:] = [item for item in pending if item.left]
            if pending:
                self._run(self._take(pending))
            pending[:] = [item for item in pending if item.left]

    def idle(self) -> bool:
        return not self.pending and self.queue.empty()

    def _gather(self, pending: list[_Item]) -> bool:
        """Add what is queued, waiting briefly while rows are on their way; False once stopped."""
        max_rows, rows = self.batcher.max_rows, sum(item.left for item in pending)
        deadline = time.perf_counter() + self.batcher.max_wait
        while rows < max_rows:
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                remaining = deadline - time.perf_counter()
                if remaining <= 0 or self.batcher.sampling_now(self.model) <= len(pending):
                    return True
                try:
                    item = self.queue.get(timeout=remaining)
                except queue.Empty:
                    return True
            if item is None:
                return False
            pending.append(item)
            rows += item.rows
        return True

    def _take(self, pending: list[_Item]) -> list[tuple[_Item, int, int]]:
        """Rows for one batch, shortest remaining call first: a small request never waits behind a
        large one, and the large one fills what room is left."""
        parts, room = [], self.batcher.max_rows
        for item in sorted(pending, key=lambda item: item.left):
            take = min(item.left, room)
            parts.append((item, item.done, item.done + take))
            room -= take
            if room == 0:
                break
        return parts

    def _run(self, parts: list[tuple[_Item, int, int]]) -> None:
        start = time.perf_counter()
        for item, first, _ in parts:
            if first == 0:
                metrics.child(metrics.QUEUE_WAIT, self.model).observe(start - item.queued)
        rows = sum(stop - first for _, first, stop in parts)
        metrics.child(metrics.BATCH_ROWS, self.model, self.network).observe(rows)
        try:
            if len(parts) == 1 and parts[0][1] == 0 and parts[0][2] == parts[0][0].rows:
                feed = parts[0][0].feed
            else:
                feed = {name: np.concatenate([item.feed[name][first:stop] for item, first, stop in parts])
                        for name in parts[0][0].feed}
            with self.lock:
                out = self.session.run(None, feed)[0]
        except Exception as exc:  # every request of the batch learns of it
            for item, _, _ in parts:
                item.done = item.rows
                item.settle(None, exc)
            return
        offset = 0
        for item, first, stop in parts:
            item.outs.append(out[offset:offset + stop - first])
            offset += stop - first
            item.done = stop
            if not item.left:
                item.settle(item.outs[0] if len(item.outs) == 1 else np.concatenate(item.outs), None)

    def stop(self) -> None:
        self.queue.put(None)


def _settle(future: asyncio.Future, out, exc) -> None:
    if not future.done():  # the request may have been cancelled meanwhile
        future.set_exception(exc) if exc is not None else future.set_result(out)


class Batcher:
    """Lanes per session, and a bound on the requests in flight per model."""

    def __init__(self, max_rows: int = 256, max_wait: float = 0.002, max_queue: int = 64,
                 inline_seconds: float = 0.005):
        self.max_rows, self.max_wait, self.max_queue = max_rows, max_wait, max_queue
        self.inline_seconds = inline_seconds
        self._lanes: dict[int, _Lane] = {}
        self.limiter = anyio.CapacityLimiter(max_queue)  # threads for sampling requests, apart from other routes
        self._in_flight: dict[str, int] = {}  # admitted, not yet answered
        self._sampling: dict[str, int] = {}  # admitted, inside sampling
        self._lock = threading.Lock()

    def run(self, call: Call) -> np.ndarray:
        """session.run(None, feed)[0], merged with whatever else is queued for the same session; blocks.

        Even a call too big to merge goes through the lane: one call at a time per session keeps
        onnxruntime from running a dozen batches at once on two cores.
        """
        future: Future = Future()

        def settle(out, exc):
            future.set_exception(exc) if exc is not None else future.set_result(out)

        self._enqueue(call, settle)
        return future.result()

    async def run_async(self, call: Call) -> np.ndarray:
        """The same, awaited on the event loop: no thread is held while the batch runs. A lone small call
        runs inline instead (see the module's docstring)."""
        rows = len(next(iter(call.feed.values())))
        if call.session.seconds(rows) <= self.inline_seconds:
            await asyncio.sleep(0)  # requests read in the same turn of the loop say they are sampling first
            lane = self._lane(call.session, call.model, call.network)
            if self.sampling_now(call.model) <= 1 and lane.idle() and lane.lock.acquire(blocking=False):
                try:
                    metrics.child(metrics.BATCH_ROWS, call.model, call.network).observe(rows)
                    metrics.child(metrics.QUEUE_WAIT, call.model).observe(0.0)
                    return call.session.run(None, call.feed)[0]
                finally:
                    lane.lock.release()
        loop = asyncio.get_running_loop()
        future = loop.create_future()

        def settle(out, exc):
            loop.call_soon_threadsafe(_settle, future, out, exc)

        self._enqueue(call, settle)
        return await future

    def _enqueue(self, call: Call, settle) -> None:
        rows = len(next(iter(call.feed.values())))
        self._lane(call.session, call.model, call.network).queue.put(_Item(call.feed, rows, settle, cancel=call.cancel))

    def _lane(self, session, model: str, network: str) -> _Lane:
        lane = self._lanes.get(id(session))
        if lane is None or lane.session is not session:
            with self._lock:
                lane = self._lanes.get(id(session))
                if lane is None or lane.session is not session:
                    lane = self._lanes[id(session)] = _Lane(session, model, network, self)
        return lane

    @contextlib.contextmanager
    def admit(self, model: str):
        """Count a request in flight for a model, or raise Overloaded when the queue is full."""
        with self._lock:
            count = self._in_flight.get(model, 0)
            if count >= self.max_queue:
                metrics.child(metrics.REJECTED, model).inc()
                raise Overloaded(f"model {model!r} has {count} requests queued, the limit (queue_requests); "
                                 "retry shortly")
            self._in_flight[model] = count + 1
        try:
            yield
        finally:
            with self._lock:
                self._in_flight[model] -= 1

    @contextlib.contextmanager
    def sampling(self, model: str):
        """Mark a request as sampling: a lane waits briefly for the rows of such requests."""
        with self._lock:
            self._sampling[model] = self._sampling.get(model, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                self._sampling[model] -= 1

    def sampling_now(self, model: str) -> int:
        return self._sampling.get(model, 0)

    def close(self) -> None:
        with self._lock:
            for lane in self._lanes.values():
                lane.stop()
            self._lanes.clear()
