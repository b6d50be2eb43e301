"""A job in a child process of its own, under a hard memory limit, so that a job that overruns fails alone: the
worker process that started it records the outcome and takes the next job.

The child is forked from a fork server (never from the worker itself, which has torch's threads running) that
imported the job's modules once, so a job starts in a moment, not after seconds of imports. It caps its data
segment with RLIMIT_DATA, which counts what the job allocates and not what torch and onnxruntime merely reserve
(RLIMIT_AS would). An allocation past it fails inside the job (MemoryError, or torch's "can't allocate memory"),
which the child reports as the job's error; a child that dies without reporting is reported by the parent.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import resource
import signal
import threading
import time
from multiprocessing import forkserver, resource_tracker
from typing import Callable

log = logging.getLogger(__name__)
MB = 2**20
CANCEL_CHECK_SECONDS = 0.5  # how often the parent asks whether the job was cancelled ...
CANCEL_GRACE_SECONDS = 2.0  # ... and how long the child then has to stop by itself before it is ended
OUT_OF_MEMORY = ("can't allocate memory", "not enough memory", "bad_alloc", "out of memory")


def over_limit(limit: int) -> str:
    return f"the job ran past its memory limit of {limit // MB:,} MB (max_job_memory)"


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether an exception is an allocation refused (by the limit, or by the machine)."""
    return isinstance(exc, MemoryError) or (isinstance(exc, RuntimeError)
                                            and any(text in str(exc).lower() for text in OUT_OF_MEMORY))


def run(target: Callable[..., dict], args: tuple, limit: int, stop: threading.Event,
        cancelled: Callable[[], bool] = lambda: False) -> dict:
    """target(*args, stopping) in a child process capped at `limit` bytes of data; its outcome, a dict with a
    "state". `stop` set in this process (the worker shutting down) sets the child's `stopping` event. A child
    still running CANCEL_GRACE_SECONDS after `cancelled()` turned true is ended (it may still be starting, or
    in an export that does not look at the flag), and the outcome is "cancelled"."""
    context = multiprocessing.get_context("forkserver")
    receiver, sender = context.Pipe(duplex=False)
    stopping = context.Event()
    watched, alive = context.Pipe(duplex=False)  # never written: the child reads EOF once this process is gone
    child = context.Process(target=_main, args=(target, args, limit, sender, stopping, watched), name="ganserve-job")
    child.start()
    sender.close()  # the child holds the only sending end: recv() ends when the child does
    watched.close()
    outcome = None
    checked, asked = time.monotonic(), None
    try:
        while outcome is None:
            if stop.is_set():
                stopping.set()
            if receiver.poll(0.2):
                outcome = receiver.recv()
            elif not child.is_alive() and not receiver.poll(0):
                break
            elif asked is None and time.monotonic() - checked >= CANCEL_CHECK_SECONDS:
                checked = time.monotonic()
                asked = checked if cancelled() else None
            elif asked is not None and time.monotonic() - asked > CANCEL_GRACE_SECONDS:
                log.info("the job was cancelled and did not stop by itself; ending its process")
                child.kill()
                outcome = {"state": "cancelled", "error": None}
    except EOFError:  # the child ended while sending
        pass
    finally:
        child.join(10)
        if child.is_alive():
            child.kill()
            child.join()
        receiver.close()
        alive.close()
    return outcome or {"state": "failed", "error": _died(child.exitcode, limit)}


def prepare(modules: list[str]) -> None:
    """Start the fork server with these modules imported (the worker does at its start; else the first job does)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(modules)
    forkserver.ensure_running()


def shutdown() -> None:
    """Stop the fork server and the resource tracker it started, and wait for them: nothing of the worker outlives
    it (`ganserve up` checks that its session is empty when it has stopped). Their `_stop` is what the standard
    library's own tests use; there is no public way to wait for them."""
    forkserver._forkserver._stop()  # type: ignore[attr-defined]
    resource_tracker._resource_tracker._stop()  # type: ignore[attr-defined]


def _died(code: int | None, limit: int) -> str:
    """Why a child that sent no outcome ended: killed (the kernel's out-of-memory killer sends SIGKILL) or crashed."""
    if code is not None and code < 0:
        name = signal.Signals(-code).name
        return (f"the job's process was killed ({name}); it may have run past the machine's memory or its limit "
                f"of {limit // MB:,} MB (max_job_memory)")
    return f"the job's process ended unexpectedly (exit code {code}) before it reported an outcome"


def _main(target, args, limit, sender, stopping, watched) -> None:
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s: %(levelname)s/job] %(name)s: %(message)s")
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the worker, which tells the job through `stopping`
    threading.Thread(target=_orphaned, args=(watched,), daemon=True).start()
    try:
        outcome = target(*args, stopping)
    except BaseException as exc:  # the target records what it expects; this is what it did not
        log.exception("the job's process failed")
        error = over_limit(limit) if is_out_of_memory(exc) else f"{type(exc).__name__}: {exc}"
        outcome = {"state": "failed", "error": error}
    sender.send(outcome)
    sender.close()


def _orphaned(watched) -> None:
    """End the job when its worker is gone (killed): nobody would record its outcome, and it would hold the memory.
    The worker holds the pipe's other end and never writes: the kernel closes it when the worker dies."""
    try:
        watched.recv()
    except EOFError:
        pass
    os._exit(1)
