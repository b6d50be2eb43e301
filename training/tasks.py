"""The Celery worker's tasks: thin wrappers around trainer + export."""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
from pathlib import Path

import numpy as np
from celery import Celery
from celery.signals import worker_shutting_down

from service import uploads
from service.jobs.protocol import HEARTBEAT_SECONDS, HISTORY_LIMIT, QUEUE, TASK, now
from service.jobs.store import JobStore
from service.repository import Card
from service.formats.pictures import combine, plot, png, to_uint8
from service.sampling import Samples
from service.settings import get_settings
from training.config import TrainConfig, build_family_config
from training.data import BUILT_IN
from training.export import export
from training.families import get_family
from training.trainer import TrainingCancelled, train

log = logging.getLogger(__name__)
WRITE_SECONDS = 1.0  # a running job's record is rewritten at most this often (and at the end)
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


def run_job(job_id: str) -> dict | None:
    """Train, export and publish one recorded job; the record on disk tells its outcome."""
    settings = get_settings()
    store = JobStore(settings.jobs_dir)
    with store.update(job_id) as record:
        if record["state"] != "queued":  # cancelled while queued, or a redelivered copy
            log.info("job %s is %s; not running it", job_id, record["state"])
            return None
        record.update(state="running", started=now(), heartbeat=now(), worker=_worker_name())
    beating = threading.Event()
    threading.Thread(target=_heartbeat, args=(store, job_id, beating), daemon=True).start()
    try:
        result = _train_and_publish(job_id, record["config"], store, settings, record.get("promote"))
    except TrainingCancelled as exc:
        outcome = {"state": "cancelled", "error": None}
        log.info("job %s: %s", job_id, exc)
    except Exception as exc:
        outcome = {"state": "failed", "error": f"{type(exc).__name__}: {exc}"}
        log.exception("job %s failed", job_id)
    else:
        outcome = {"state": "succeeded", "result": result}
    finally:
        beating.set()
    with store.update(job_id) as record:
        record.update(finished=now(), **outcome)
    return outcome.get("result")


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _heartbeat(store: JobStore, job_id: str, stop: threading.Event) -> None:
    """Tell the API this job's worker is alive, even through long exports and evaluations."""
    while not stop.wait(HEARTBEAT_SECONDS):
        with store.update(job_id) as record:
            if record["state"] == "running":
                record["heartbeat"] = now()


def _data_source(data: str | dict, settings) -> str | dict:
    """A job's data as the trainer reads it: built-in names as they are, an upload id as its file; per domain
    for a translation family's {"a": ..., "b": ...}."""
    if isinstance(data, dict):
        return {key: _data_source(value, settings) for key, value in data.items()}
    if data in BUILT_IN:
        return data
    return str(uploads.path_of(data, settings))


def _save_snapshot(folder: Path, step: int, kind: str, values: np.ndarray, picture: dict | None) -> str:
    """A PNG of the trainer's fixed-latent samples: a grid of images, or a plot of points or curves drawn
    over the family's picture (its card's)."""
    if values.ndim == 4:  # images (n, c, h, w): samples, or a translation family's rows of pairs
        pixels = combine(to_uint8(values))
    else:
        samples = Samples(model="", version=0, seed=0, mode="plain", kind=kind, values=values, labels=None,
                          label_names=None, scores=None, value_range=(-1.0, 1.0), candidates=len(values))
        pixels = plot(samples, picture=picture)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{step}.png").write_bytes(png(pixels))
    return f"{step}.png"


def _train_and_publish(job_id: str, config_dict: dict, store: JobStore, settings, promote: bool | None) -> dict:
    steps = config_dict["steps"]
    config = TrainConfig.from_dict({**config_dict, "threads": settings.train_threads,
                                    "data": _data_source(config_dict["data"], settings),
                                    "snapshot_every": max(1, steps // SNAPSHOTS),
                                    "progress_every": max(1, min(50, steps // 200))})
    family = get_family(config.family)
    kind = family.KIND
    picture = family.picture(build_family_config(family.Config, config.params))
    snapshot_dir = settings.jobs_dir / job_id
    pending: list[dict] = []  # progress points not yet written to the record
    snapshots: list[dict] = []
    started = time.monotonic()
    clock = {"write": 0.0, "check": 0.0, "cancel": False}

    def should_stop() -> bool:
        if time.monotonic() - clock["check"] >= CANCEL_CHECK_SECONDS:
            clock["check"] = time.monotonic()
            clock["cancel"] = store.read(job_id)["cancel_requested"]
            if SHUTTING_DOWN.is_set():
                raise WorkerStopping("the worker was stopped before the job finished; submit it again")
            if time.monotonic() - started > settings.max_job_seconds:
                raise TimeLimitExceeded(f"the job ran past its time limit of {settings.max_job_seconds:g} s")
        return clock["cancel"]

    def on_progress(p) -> None:
        pending.append(p.point())
        if p.snapshot is not None:
            snapshots.append({"step": p.step, "file": _save_snapshot(snapshot_dir, p.step, kind, p.snapshot, picture)})
        if time.monotonic() - clock["write"] < WRITE_SECONDS and p.step != p.steps:
            return
        clock["write"] = time.monotonic()
        rate = p.step / p.seconds if p.seconds > 0 else None
        with store.update(job_id) as record:
            record["progress"] = {"step": p.step, "steps": p.steps, "epoch": p.epoch,
                                  "eta_seconds": round((p.steps - p.step) / rate, 1) if rate else None}
            record["latest"] = pending[-1]
            record["history"] = (record["history"] + pending)[-HISTORY_LIMIT:]
            record["snapshots"] = list(snapshots)
            record["heartbeat"] = now()
        pending.clear()

    checkpoint = train(config, on_progress=on_progress, should_stop=should_stop)
    repositories = settings.repositories
    path = export(checkpoint, repositories[0], others=tuple(repositories[1:]), promote=promote, job=job_id,
                  data_name=config_dict["data"])
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
    """One worker process, one job at a time (the solo pool: no fork, so torch's threads are safe)."""
    make_app().worker_main(["worker", "--pool=solo", "--loglevel=INFO", f"--queues={QUEUE}",
                            "--without-gossip", "--without-mingle", "--without-heartbeat"])
