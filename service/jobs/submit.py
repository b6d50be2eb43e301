"""Training jobs from the API's side: validate, record, send the task by name, cancel."""
from __future__ import annotations

import logging
import uuid

from celery import Celery

from service.jobs import uploads
from service.jobs.protocol import FINAL, QUEUE, TASK, catalog, check_params, now
from service.jobs.store import JobStore
from service.settings import Settings

log = logging.getLogger(__name__)


class JobError(ValueError):
    """A job the API refuses; the message names the field and the limit."""


class BrokerUnavailable(RuntimeError):
    """Redis does not answer: jobs cannot be queued right now (cancelling needs no Redis)."""


def celery_app(settings: Settings) -> Celery:
    """A client-side Celery app: it only sends tasks, by name."""
    app = Celery("ganserve-api", broker=settings.redis_url, backend=None)
    app.conf.update(broker_connection_retry_on_startup=False, broker_connection_max_retries=0,
                    broker_transport_options={"max_retries": 0, "socket_connect_timeout": 2, "socket_timeout": 2})
    return app


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


def submit(payload: dict, settings: Settings, store: JobStore, app: Celery) -> dict:
    """Record the job, then queue it; if Redis is down the record is removed and nothing is queued."""
    config = validate(payload, settings)
    job_id = uuid.uuid4().hex
    # A job that names no model publishes under a name of its own, never over a shipped one.
    config["model"] = config["model"] or f"{config['family']}-{job_id[:8]}"
    record = store.create(config, job_id=job_id, promote=payload.get("promote"))
    try:
        app.send_task(TASK, args=[record["id"]], task_id=record["id"], queue=QUEUE)
    except Exception as exc:  # kombu raises several types for a broker that is not there
        store.delete(record["id"])
        log.warning("could not queue job %s: %s", record["id"], exc)
        raise BrokerUnavailable(f"the job queue (Redis at {settings.redis_url}) is not answering; "
                                "try again shortly") from None
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
