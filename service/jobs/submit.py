"""Training jobs from the API's side: validate, record, send the task by name, cancel."""
from __future__ import annotations

import datetime as dt
import json
import logging
import uuid

from celery import Celery

from service import uploads
from service.jobs import memory, workers
from service.jobs.protocol import FINAL, QUEUE, TASK, catalog, check_params, now
from service.keys import OPERATOR, Caller
from service.settings import Settings
from service.store import Store, TooManyQueued
from service.store.jobs import JobRecords

log = logging.getLogger(__name__)


class JobError(ValueError):
    """A job the API refuses; the message names the field and the limit."""


class QueueFull(RuntimeError):
    """Too many of a key's jobs are queued (429); retry after `retry_after` seconds."""
    retry_after = 30


class BrokerUnavailable(RuntimeError):
    """Redis does not answer: jobs cannot be queued right now (cancelling needs no Redis)."""


def celery_app(settings: Settings) -> Celery:
    """A client-side Celery app: it only sends tasks, by name."""
    app = Celery("ganserve-api", broker=settings.redis_url, backend=None)
    app.conf.update(broker_connection_retry_on_startup=False, broker_connection_max_retries=0,
                    broker_transport_options={"max_retries": 0, "socket_connect_timeout": 2, "socket_timeout": 2})
    return app


def broker_answers(app: Celery) -> bool:
    """Whether the broker answers a ping within a second or two."""
    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=0, timeout=2)
        return True
    except Exception:  # kombu raises several types for a broker that is not there
        return False


def validate(payload: dict, settings: Settings, store: Store, caller: Caller = OPERATOR) -> dict:
    """A TrainConfig dict from a job request, every field checked against the family's limits."""
    families = catalog()
    family = payload["family"]
    if family not in families:
        raise JobError(f"family: unknown family {family!r}; known: {', '.join(sorted(families))}")
    spec = families[family]
    steps = payload.get("steps") or spec["default_steps"]
    if not 1 <= steps <= settings.max_steps:
        raise JobError(f"steps: must be between 1 and {settings.max_steps}, got {steps}")
    params = payload.get("params") or {}
    unknown = set(params) - set(spec["params"])
    if unknown:
        raise JobError(f"params: unknown {sorted(unknown)} for family {family}; known: {sorted(spec['params'])}")
    try:
        checked = check_params(spec["params"], params)
    except ValueError as exc:
        raise JobError(str(exc)) from None
    data = payload.get("data") or "default"
    if spec["kind"] == "translation":
        if data != "default" and (not isinstance(data, dict) or set(data) != {"a", "b"}):
            raise JobError(f"data: family {family} translates between two domains; give both, "
                           "{\"a\": \"mnist\", \"b\": \"uci\" or an upload id}, or 'default'")
        for key, source in (data.items() if isinstance(data, dict) else ()):
            _check_source(source, family, spec, store, f"data.{key}", caller)
    elif isinstance(data, dict):
        raise JobError(f"data: family {family} takes one data source (a name or an upload id), not one per domain")
    elif spec["kind"] != "image" and data != "default":
        raise JobError(f"data: family {family} draws its own data; data must be 'default'")
    elif data == "default" and not spec["default_data"]:
        raise JobError(f"data: family {family} has no data of its own; give 'mnist', 'uci' or the id of an upload "
                       "(POST /v1/data)")
    else:
        _check_source(data, family, spec, store, "data", caller)
    try:
        memory.check(spec, checked, settings.max_job_memory, _images(data, spec, store, caller))
    except ValueError as exc:
        raise JobError(str(exc)) from None
    if payload.get("model"):
        shipped = any((folder / payload["model"]).is_dir() for folder in settings.repositories[1:])
        store.versions.check_publisher(payload["model"], caller.sees, shipped)
    device = payload.get("device") or "auto"
    if device not in ("auto", "cpu", "cuda"):
        raise JobError(f"device: must be auto, cpu or cuda, got {device!r}")
    return {"family": family, "steps": steps, "data": data, "params": params,
            "model": payload.get("model"), "seed": payload.get("seed") or 0, "device": device}


def check_device(device: str, app: Celery) -> None:
    """JobError (422) unless a running worker can train on the device the job asks for."""
    if device in ("auto", "cpu"):
        return
    try:
        with app.connection_for_read() as connection:
            why = workers.missing_device(connection.default_channel.client, device)
    except Exception as exc:  # kombu and redis-py raise several types for a broker that is not there
        log.warning("could not read the workers' devices: %s", exc)
        raise BrokerUnavailable("the job queue (Redis) is not answering; try again shortly") from None
    if why:
        raise JobError(why)


BUILT_IN = {"default": 5000, "mnist": 5000, "uci": 1797}  # training/data.py's built-in image sources: their images


def _images(data: str | dict, spec: dict, store: Store, caller: Caller) -> int:
    """The training images a job reads (both domains' for a translation); 0 for a family that draws its own."""
    if isinstance(data, dict):
        return sum(_images(source, spec, store, caller) for source in data.values())
    if spec["kind"] not in ("image", "translation"):
        return 0
    if spec["kind"] == "translation" and data == "default":  # its two domains: MNIST and UCI
        return BUILT_IN["mnist"] + BUILT_IN["uci"]
    return BUILT_IN[data] if data in BUILT_IN else uploads.read(data, store, caller.sees)["n"]


def _check_source(source: str, family: str, spec: dict, store: Store, field: str, caller: Caller) -> None:
    """A built-in image source, or an upload of the caller's (labelled, where the family needs labels): another
    key's upload is unknown, as if it did not exist."""
    if source in BUILT_IN:
        return
    try:
        meta = uploads.read(source, store, caller.sees)
    except uploads.UnknownUpload:
        raise JobError(f"{field}: {source!r} is neither 'mnist', 'uci' nor the id of an upload (POST /v1/data)") from None
    if spec["labels"] and not meta["labelled"]:
        raise JobError(f"{field}: family {family} needs labelled data; upload {source} has no labels")
    if meta["n"] < spec["min_images"]:
        raise JobError(f"{field}: family {family} needs at least {spec['min_images']} images (some are held out to "
                       f"measure the model); upload {source} has {meta['n']}")


def new_record(config: dict, job_id: str, owner: str, **fields) -> dict:
    """A queued job's record, whole, as the store keeps it and the API answers it."""
    return {
        "id": job_id, "state": "queued", "family": config["family"], "model": config.get("model") or config["family"],
        "config": config, "created": now(), "started": None, "finished": None, "heartbeat": None,
        "progress": {"step": 0, "steps": config.get("steps"), "epoch": 0.0, "eta_seconds": None},
        "latest": None, "history": [], "snapshots": [], "error": None, "result": None,
        "cancel_requested": False, "requeued": 0, "worker": None, "owner": owner, **fields,
    }


def submit(payload: dict, settings: Settings, store: Store, app: Celery, caller: Caller = OPERATOR) -> dict:
    """Record the job, then queue it; if Redis is down the record is removed and nothing is queued.

    The job is the caller's (its key's id, never the key): only that key (or an admin) sees it, and it counts
    against that key's queue bound, checked and inserted in one transaction so concurrent submissions cannot
    pass the bound together.
    """
    config = validate(payload, settings, store, caller)
    check_device(config["device"], app)
    job_id = uuid.uuid4().hex
    # A job that names no model publishes under a name of its own, never over a shipped one.
    config["model"] = config["model"] or f"{config['family']}-{job_id[:8]}"
    try:
        record = store.jobs.create(new_record(config, job_id, caller.id, promote=payload.get("promote"),
                                              admin=caller.admin), max_queued=settings.max_queued_jobs)
    except TooManyQueued as exc:
        raise QueueFull(f"jobs: {exc.queued} of this key's jobs are queued, the limit (max_queued_jobs); "
                        "retry when some have started") from None
    try:
        app.send_task(TASK, args=[record["id"]], task_id=record["id"], queue=QUEUE)
    except Exception as exc:  # kombu raises several types for a broker that is not there
        store.jobs.delete(record["id"])
        log.warning("could not queue job %s: %s", record["id"], exc)
        # Never the URL itself: it may carry the broker's password.
        raise BrokerUnavailable("the job queue (Redis) is not answering; try again shortly") from None
    return record


def cancel(job_id: str, store: JobRecords) -> dict:
    """Ask a job to stop: a queued one never starts, a running one stops at its next step."""
    with store.update(job_id) as record:
        if record["state"] in FINAL:
            return record
        record["cancel_requested"] = True
        if record["state"] == "queued":  # the worker skips a job that is no longer queued
            record["state"] = "cancelled"
            record["finished"] = now()
    return record


def queued_in_broker(app: Celery) -> set[str]:
    """The ids of the task messages the broker holds: waiting in the queue, or delivered and not yet acked."""
    with app.connection_for_read() as connection:
        client = connection.default_channel.client  # the Redis client kombu uses, whatever the URL's form
        waiting = [json.loads(raw) for raw in client.lrange(QUEUE, 0, -1)]
        unacked = [json.loads(raw)[0] for raw in client.hvals("unacked")]
    return {message.get("headers", {}).get("id") for message in waiting + unacked}


def reconcile(store: JobRecords, app: Celery, older_than: float) -> list[str]:
    """Queued jobs whose message the broker no longer holds (a Redis restarted without its data) are sent
    again once; lost a second time, they fail and say why. Sending again is safe: a worker runs a job
    only while its record is queued, so a duplicate message is skipped."""
    held = queued_in_broker(app)
    cutoff = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=older_than)
    touched = []
    for job_id in store.ids("queued", before=cutoff):
        if job_id in held:
            continue
        with store.update(job_id) as current:
            if current["state"] != "queued":
                continue
            if current.get("requeued"):
                current.update(state="failed", finished=now(),
                               error="lost: its queue message vanished twice (Redis restarted without its data)")
            else:
                current["requeued"] = 1
                app.send_task(TASK, args=[current["id"]], task_id=current["id"], queue=QUEUE)
        touched.append(job_id)
    return touched
