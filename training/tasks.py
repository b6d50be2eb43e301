"""The Celery worker's tasks: thin wrappers around trainer + export."""
from __future__ import annotations

import json
import logging
import time

from celery import Celery

from service.jobs import QUEUE, TASK
from service.jobstore import HISTORY_LIMIT, JobStore, now
from service.settings import get_settings
from training.config import TrainConfig
from training.export import export
from training.trainer import Cancelled, train

log = logging.getLogger(__name__)
WRITE_SECONDS = 1.0  # a running job's record is rewritten at most this often (and at the end)
CANCEL_CHECK_SECONDS = 0.2  # how often the training loop looks at the cancel flag


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
        record.update(state="running", started=now(), heartbeat=now())
    try:
        result = _train_and_publish(job_id, record["config"], store, settings)
    except Cancelled as exc:
        outcome = {"state": "cancelled", "error": None}
        log.info("job %s: %s", job_id, exc)
    except Exception as exc:
        outcome = {"state": "failed", "error": f"{type(exc).__name__}: {exc}"}
        log.exception("job %s failed", job_id)
    else:
        outcome = {"state": "succeeded", "result": result}
    with store.update(job_id) as record:
        record.update(finished=now(), **outcome)
    return outcome.get("result")


def _train_and_publish(job_id: str, config_dict: dict, store: JobStore, settings) -> dict:
    config = TrainConfig.from_dict({**config_dict, "threads": settings.train_threads})
    pending: list[dict] = []  # progress points not yet written to the record
    clock = {"write": 0.0, "check": 0.0, "cancel": False}

    def should_stop() -> bool:
        if time.monotonic() - clock["check"] >= CANCEL_CHECK_SECONDS:
            clock["check"] = time.monotonic()
            clock["cancel"] = store.read(job_id)["cancel_requested"]
        return clock["cancel"]

    def on_progress(p) -> None:
        pending.append({k: v for k, v in vars(p).items() if k != "snapshot"})
        if time.monotonic() - clock["write"] < WRITE_SECONDS and p.step != p.steps:
            return
        clock["write"] = time.monotonic()
        rate = p.step / p.seconds if p.seconds > 0 else None
        with store.update(job_id) as record:
            record["progress"] = {"step": p.step, "steps": p.steps, "epoch": p.epoch,
                                  "eta_seconds": round((p.steps - p.step) / rate, 1) if rate else None}
            record["latest"] = pending[-1]
            record["history"] = (record["history"] + pending)[-HISTORY_LIMIT:]
            record["heartbeat"] = now()
        pending.clear()

    checkpoint = train(config, on_progress=on_progress, should_stop=should_stop)
    repositories = settings.repositories
    path = export(checkpoint, repositories[0], others=tuple(repositories[1:]))
    card = json.loads((path / "card.json").read_text())
    return {"model": card["name"], "version": int(path.name), "metrics": card["metrics"]}


def run_worker() -> None:
    """One worker process, one job at a time (the solo pool: no fork, so torch's threads are safe)."""
    make_app().worker_main(["worker", "--pool=solo", "--loglevel=INFO", f"--queues={QUEUE}",
                            "--without-gossip", "--without-mingle", "--without-heartbeat"])
