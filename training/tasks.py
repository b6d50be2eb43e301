"""The Celery worker's tasks: thin wrappers around trainer + export."""
from __future__ import annotations

import functools
import logging
import os
import re
import socket
import threading
import time

import numpy as np
from celery import Celery
from celery.signals import worker_ready, worker_shutting_down

from service import uploads
from service.jobs import workers
from service.jobs.protocol import HEARTBEAT_SECONDS, HISTORY_LIMIT, QUEUE, TASK, now, worker_id
from service.repository import Card
from service.store import Store, StoreUnavailable, open_store
from service.store.engine import retrying
from service.formats.pictures import combine, plot, png, to_uint8
from service.sampling import Samples
from service.settings import get_settings
from training import hardware, isolation
from training.config import TrainConfig, build_family_config
from training.data import BUILT_IN
from training.export import export
from training.families import get_family
from training.trainer import TrainingCancelled, train

log = logging.getLogger(__name__)
WRITE_SECONDS = 1.0  # a running job's record is rewritten at most this often (and at the end)
OUTCOME_SECONDS = 600.0  # how long a finished job waits for a restarting store to take its outcome
CANCEL_CHECK_SECONDS = 0.2  # how often the training loop looks at the cancel flag
SNAPSHOTS = 20  # sample-grid snapshots per job


class TimeLimitExceeded(RuntimeError):
    """The job ran past its time limit."""


class WorkerStopping(RuntimeError):
    """The worker is shutting down (Ctrl-C, SIGTERM): the running job stops instead of holding it up."""


SHUTTING_DOWN = threading.Event()


@worker_shutting_down.connect
def _on_shutdown(**_) -> None:
    SHUTTING_DOWN.set()


@worker_ready.connect
def _advertise(sender=None, **_) -> None:
    """Tell the API which devices this worker trains on (a job asking for cuda is refused unless one has it)."""
    settings = get_settings()
    info = {"devices": hardware.devices(), "cores": hardware.cores(), "host": workers.host_id(),
            "threads": settings.train_threads or "measured", "device": settings.device}
    connection = sender.app.connection_for_write()  # its own: the consumer's channel is not shared across threads
    ADVERTISING["client"] = connection.default_channel.client
    workers.keep_advertising(ADVERTISING["client"], _worker_name(), info, SHUTTING_DOWN)


ADVERTISING: dict = {}  # the Redis client this worker advertises with, once it is ready


def _workers_here(settings) -> int:
    """The training workers sharing this machine's cores: as configured, or as many as advertise from it."""
    client = ADVERTISING.get("client")
    if client is None:
        return settings.train_workers
    try:
        return max(settings.train_workers, workers.on_host(client, workers.host_id()))
    except Exception as exc:  # redis-py raises several types for a server that went away
        log.warning("could not count the workers on this machine: %s", exc)
        return settings.train_workers


def make_app() -> Celery:
    settings = get_settings()
    app = Celery("ganserve-worker", broker=settings.redis_url, backend=None)
    app.conf.update(
        task_acks_late=True,  # a job whose worker dies is not lost with the message ...
        worker_prefetch_multiplier=1,  # ... and a busy worker does not hoard queued jobs
        task_default_queue=QUEUE,
        # Redis redelivers an unacked task after this long: it must exceed the longest job.
        broker_transport_options={"visibility_timeout": 7 * 24 * 3600},
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )
    app.task(name=TASK)(run_job)
    return app


@functools.lru_cache
def worker_store() -> Store:
    """The worker process's store (opened once: its connections are pooled)."""
    return open_store(get_settings())


def run_job(job_id: str) -> dict | None:
    """Train, export and publish one recorded job; the record in the store tells its outcome."""
    settings = get_settings()
    store = worker_store()
    record = retrying(lambda: _claim(store, job_id), OUTCOME_SECONDS, f"job {job_id}: starting")
    if record is None:
        return None
    beating = threading.Event()
    threading.Thread(target=_heartbeat, args=(store, job_id, beating), daemon=True).start()
    try:  # in a process of its own: a job that runs past its memory fails alone, and this worker takes the next
        outcome = isolation.run(_run_isolated, (job_id, record), settings.max_job_memory, SHUTTING_DOWN,
                                cancelled=lambda: _cancel_requested(store, job_id))
    finally:
        beating.set()
    retrying(lambda: _finish(store, job_id, outcome), OUTCOME_SECONDS, f"job {job_id}: recording its outcome")
    return outcome.get("result")


def _run_isolated(job_id: str, record: dict, stopping) -> dict:
    """The job's outcome, run in its child process (isolation.run) with a store of its own; the worker keeps the
    heartbeat and records the outcome."""
    settings = get_settings()
    threading.Thread(target=_relay, args=(stopping,), daemon=True).start()
    try:
        result = _train_and_publish(job_id, record, worker_store(), settings)
    except TrainingCancelled as exc:
        log.info("job %s: %s", job_id, exc)
        return {"state": "cancelled", "error": None}
    except Exception as exc:
        log.exception("job %s failed", job_id)
        if isolation.is_out_of_memory(exc):
            return {"state": "failed", "error": isolation.over_limit(settings.max_job_memory)}
        return {"state": "failed", "error": public_error(exc, settings)}
    return {"state": "succeeded", "result": result}


def _cancel_requested(store: Store, job_id: str) -> bool:
    try:
        return store.jobs.cancel_requested(job_id)
    except StoreUnavailable:  # restarting: asked again shortly
        return False


def _relay(stopping) -> None:
    """The worker's shutdown, as the child's training loop sees it (should_stop reads SHUTTING_DOWN)."""
    stopping.wait()
    SHUTTING_DOWN.set()


def _claim(store: Store, job_id: str) -> dict | None:
    """The record, now running on this worker; None if it is not queued (cancelled, or a redelivered copy)."""
    with store.jobs.update(job_id) as record:
        if record["state"] != "queued":
            log.info("job %s is %s; not running it", job_id, record["state"])
            return None
        record.update(state="running", started=now(), heartbeat=now(), worker=_worker_name())
    return record


def _finish(store: Store, job_id: str, outcome: dict) -> None:
    with store.jobs.update(job_id) as record:
        record.update(finished=now(), **outcome)


def _worker_name() -> str:
    """The worker as a job record shows it: an opaque id (the log says which host and process it is)."""
    ident = worker_id(socket.gethostname(), os.getpid())
    log.info("this worker (%s:%d) is %s in job records", socket.gethostname(), os.getpid(), ident)
    return ident


def public_error(exc: BaseException, settings) -> str:
    """A failed job's error as its record shows it: no path of the worker's machine (an upload's data file is
    named by the upload's id, any other path by its last part)."""
    text = f"{type(exc).__name__}: {exc}"
    for folder in (settings.data.resolve(), settings.data):
        text = re.sub(re.escape(str(folder)) + r"/uploads/([0-9a-f]{32})[^\s'\":]*", r"upload \1", text)
    return re.sub(r"(?<![\w.])/(?:[^\s'\"/]+/)+([^\s'\"/]+)", r"\1", text)


def _heartbeat(store: Store, job_id: str, stop: threading.Event) -> None:
    """Tell the API this job's worker is alive, even through long exports and evaluations (a beat the store
    misses while it restarts is just late: the job goes on)."""
    while not stop.wait(HEARTBEAT_SECONDS):
        try:
            store.jobs.beat(job_id, now())
        except StoreUnavailable:
            log.warning("job %s: heartbeat not recorded (the store is not answering)", job_id)


def _data_source(data: str | dict, store: Store) -> str | dict:
    """A job's data as the trainer reads it: built-in names as they are, an upload id as its file on this machine
    (fetched from the store); per domain for a translation family's {"a": ..., "b": ...}."""
    if isinstance(data, dict):
        return {key: _data_source(value, store) for key, value in data.items()}
    if data in BUILT_IN:
        return data
    return str(uploads.path_of(data, store))


def _snapshot_png(kind: str, values: np.ndarray, picture: dict | None) -> bytes:
    """A PNG of the trainer's fixed-latent samples: a grid of images, or a plot of points or curves drawn
    over the family's picture (its card's)."""
    if values.ndim == 4:  # images (n, c, h, w): samples, or a translation family's rows of pairs
        pixels = combine(to_uint8(values))
    else:
        samples = Samples(model="", version=0, seed=0, mode="plain", kind=kind, values=values, labels=None,
                          label_names=None, scores=None, value_range=(-1.0, 1.0), candidates=len(values))
        pixels = plot(samples, picture=picture)
    return png(pixels)


def _train_and_publish(job_id: str, record: dict, store: Store, settings) -> dict:
    config_dict = record["config"]
    steps = config_dict["steps"]
    # The job's device, unless it left the choice to the worker (auto: GANSERVE_DEVICE, itself auto by default).
    device = config_dict.get("device") or "auto"
    config = TrainConfig.from_dict({**config_dict, "threads": settings.train_threads,
                                    "device": settings.device if device == "auto" else device,
                                    "data": _data_source(config_dict["data"], store),
                                    "snapshot_every": max(1, steps // SNAPSHOTS),
                                    "progress_every": max(1, min(50, steps // 200))})
    family = get_family(config.family)
    kind = family.KIND
    picture = family.picture(build_family_config(family.Config, config.params))
    pending: list[dict] = []  # progress points not yet written to the record
    unsaved: list[tuple[int, bytes]] = []  # snapshots not yet in the store
    snapshots: list[dict] = []
    started = time.monotonic()
    clock: dict = {"write": 0.0, "check": 0.0, "cancel": False, "last": None}

    def should_stop() -> bool:
        if time.monotonic() - clock["check"] >= CANCEL_CHECK_SECONDS:
            clock["check"] = time.monotonic()
            try:
                clock["cancel"] = store.jobs.cancel_requested(job_id)
            except StoreUnavailable:  # restarting: asked again at the next check
                pass
            if SHUTTING_DOWN.is_set():
                raise WorkerStopping("the worker was stopped before the job finished; submit it again")
            if time.monotonic() - started > settings.max_job_seconds:
                raise TimeLimitExceeded(f"the job ran past its time limit of {settings.max_job_seconds:g} s")
        return clock["cancel"]

    def record_progress(p) -> None:
        """Write the pictures and points not yet in the store, and p as the job's progress."""
        while unsaved:
            step, picture_png = unsaved[0]
            store.jobs.add_snapshot(job_id, step, picture_png)
            snapshots.append({"step": step, "file": f"{step}.png"})
            unsaved.pop(0)
        rate = p.step / p.seconds if p.seconds > 0 else None
        with store.jobs.update(job_id) as current:
            current["progress"] = {"step": p.step, "steps": p.steps, "epoch": p.epoch,
                                   "eta_seconds": round((p.steps - p.step) / rate, 1) if rate else None}
            current["latest"] = pending[-1]
            current["hardware"] = p.hardware
            current["history"] = (current["history"] + pending)[-HISTORY_LIMIT:]
            current["snapshots"] = list(snapshots)
            current["heartbeat"] = now()
        pending.clear()

    def on_progress(p) -> None:
        pending.append(p.point())
        clock["last"] = p
        if p.snapshot is not None:
            unsaved.append((p.step, _snapshot_png(kind, p.snapshot, picture)))
        if time.monotonic() - clock["write"] < WRITE_SECONDS and p.step != p.steps:
            return
        clock["write"] = time.monotonic()
        try:
            record_progress(p)
        except StoreUnavailable:  # restarting: these points and pictures go with the next write
            log.warning("job %s: progress not recorded this time (the store is not answering)", job_id)

    checkpoint = train(config, on_progress=on_progress, should_stop=should_stop, workers=_workers_here(settings))
    if pending or unsaved:  # the last write found the store restarting: the record ends whole, or not at all
        retrying(lambda: record_progress(clock["last"]), OUTCOME_SECONDS, f"job {job_id}: recording its progress")
    repositories = settings.repositories
    path = retrying(lambda: export(checkpoint, repositories[0], others=tuple(repositories[1:]),
                                   promote=record.get("promote"), job=job_id, data_name=config_dict["data"],
                                   store=store.versions, owner=record.get("owner"), admin=bool(record.get("admin"))),
                    OUTCOME_SECONDS, f"job {job_id}: publishing")
    card = Card.load(path)
    return {"model": card.name, "version": card.version, "metrics": card.metrics, "promoted": card.promoted,
            "gate": card.gate.model_dump() if card.gate else None, "message": _outcome(card)}


def _outcome(card: Card) -> str:
    """What the job did to the model's default, in one sentence for the record, the page and the events."""
    gate = f"gate {card.gate.outcome} ({card.gate.summary()})" if card.gate else "no gate checked"
    if card.promoted:
        return f"{card.name} version {card.version} published and made the default; {gate}"
    why = "it failed its quality gate" if card.gate and card.gate.outcome == "failed" else "the job did not promote it"
    return f"{card.name} version {card.version} published, but the default is unchanged: {why}; {gate}"


def run_worker() -> None:
    """One worker process, one job at a time (the solo pool: no fork, so torch's threads are safe), each job in a
    process of its own (isolation.run)."""
    isolation.prepare([__name__])
    try:
        make_app().worker_main(["worker", "--pool=solo", "--loglevel=INFO", f"--queues={QUEUE}",
                                "--without-gossip", "--without-mingle", "--without-heartbeat"])
    finally:
        isolation.shutdown()
