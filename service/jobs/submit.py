"""Training jobs from the API's side: validate, record, send the task by name, cancel."""
from __future__ import annotations

import datetime as dt
import json
import logging
import uuid

from celery import Celery

from service import uploads
from service.jobs.protocol import FINAL, QUEUE, TASK, catalog, check_params, now
from service.jobs.store import JobStore
from service.settings import Settings

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


def validate(payload: dict, settings: Settings) -> dict:
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
        check_params(spec["params"], params)
    except ValueError as exc:
        raise JobError(str(exc)) from None
    data = payload.get("data") or "default"
    if spec["kind"] == "translation":
        if data != "default" and (not isinstance(data, dict) or set(data) != {"a", "b"}):
            raise JobError(f"data: family {family} translates between two domains; give both, "
                           "{\"a\": \"mnist\", \"b\": \"uci\" or an upload id}, or 'default'")
        for key, source in (data.items() if isinstance(data, dict) else ()):
            _check_source(source, family, spec, settings, f"data.{key}")
    elif isinstance(data, dict):
        raise JobError(f"data: family {family} takes one data source (a name or an upload id), not one per domain")
    elif spec["kind"] != "image" and data != "default":
        raise JobError(f"data: family {family} draws its own data; data must be 'default'")
    else:
        _check_source(data, family, spec, settings, "data")
    return {"family": family, "steps": steps, "data": data, "params": params,
            "model": payload.get("model"), "seed": payload.get("seed") or 0}


BUILT_IN = ("default", "mnist", "uci")  # training/data.py's built-in image sources


def _check_source(source: str, family: str, spec: dict, settings: Settings, field: str) -> None:
    """A built-in image source, or an upload that exists (labelled, where the family needs labels)."""
    if source in BUILT_IN:
        return
    try:
        meta = uploads.read(source, settings)
    except uploads.UnknownUpload:
        raise JobError(f"{field}: {source!r} is neither 'mnist', 'uci' nor the id of an upload (POST /v1/data)") from None
    if spec["labels"] and not meta["labelled"]:
        raise JobError(f"{field}: family {family} needs labelled data; upload {source} has no labels")


def submit(payload: dict, settings: Settings, store: JobStore, app: Celery, owner: str = "anonymous") -> dict:
    """Record the job, then queue it; if Redis is down the record is removed and nothing is queued.

    `owner` (a hash of the API key, never the key) bounds how many jobs one key may have queued.
    """
    config = validate(payload, settings)
    queued = sum(1 for record in store.list("queued") if record.get("owner", "anonymous") == owner)
    if queued >= settings.max_queued_jobs:
        raise QueueFull(f"jobs: {queued} of this key's jobs are queued, the limit (max_queued_jobs); "
                        "retry when some have started")
    job_id = uuid.uuid4().hex
    # A job that names no model publishes under a name of its own, never over a shipped one.
    config["model"] = config["model"] or f"{config['family']}-{job_id[:8]}"
    record = store.create(config, job_id=job_id, promote=payload.get("promote"), owner=owner)
    try:
        app.send_task(TASK, args=[record["id"]], task_id=record["id"], queue=QUEUE)
    except Exception as exc:  # kombu raises several types for a broker that is not there
        store.delete(record["id"])
        log.warning("could not queue job %s: %s", record["id"], exc)
        # Never the URL itself: it may carry the broker's password.
        raise BrokerUnavailable("the job queue (Redis) is not answering; try again shortly") from None
    return record


def cancel(job_id: str, store: JobStore) -> dict:
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


def reconcile(store: JobStore, app: Celery, older_than: float) -> list[str]:
    """Queued jobs whose message the broker no longer holds (a Redis restarted without its data) are sent
    again once; lost a second time, they fail and say why. Sending again is safe: a worker runs a job
    only while its record is queued, so a duplicate message is skipped."""
    held = queued_in_broker(app)
    cutoff = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=older_than)
    touched = []
    for record in store.list("queued"):
        if record["id"] in held or dt.datetime.fromisoformat(record["created"]) > cutoff:
            continue
        with store.update(record["id"]) as current:
            if current["state"] != "queued":
                continue
            if current.get("requeued"):
                current.update(state="failed", finished=now(),
                               error="lost: its queue message vanished twice (Redis restarted without its data)")
            else:
                current["requeued"] = 1
                app.send_task(TASK, args=[current["id"]], task_id=current["id"], queue=QUEUE)
        touched.append(record["id"])
    return touched
