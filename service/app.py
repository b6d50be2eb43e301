"""create_app(): lifespan (load models, watch for new versions), routers, error handlers."""
from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import time

import anyio
from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from service import errors
from service.api import data, datasets, docs, health, jobs, models, pages, samples, translate
from service.api.guard import Guard
from service.keys import Keys
from service.jobs.protocol import now
from service.jobs.submit import broker_answers, celery_app, reconcile
from service.repository import Repository
from service.repository.sessions import available, batching
from service.store import Store, StoreUnavailable, open_store
from service.store.jobs import JobRecords
from service.sampling.batching import Batcher
from service.sampling.budget import WorkBudget
from service.sampling.datasets import Streams
from service.settings import Settings, get_settings

log = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI):
    settings = app.state.settings
    store = await run_in_threadpool(open_store, settings)
    app.state.store = store
    providers = available(settings.providers)
    repository = Repository(settings.repositories, threads=settings.ort_threads,
                            cores=max(1, (os.cpu_count() or 1) // max(1, settings.processes)), store=store.versions,
                            providers=providers)
    seen = await run_in_threadpool(_revision, store)  # read first: a change during the refresh is picked up next
    await run_in_threadpool(repository.refresh)
    app.state.repository = repository
    rows, wait_ms = batching(providers)
    app.state.batcher = Batcher(settings.batch_rows or rows, (settings.batch_wait_ms or wait_ms) / 1000,
                                settings.queue_requests, settings.inline_ms / 1000)
    app.state.jobs = store.jobs
    app.state.work = WorkBudget(settings.max_work_bytes)
    app.state.large_bodies = anyio.CapacityLimiter(1)  # see service/api/strict.py off_loop
    app.state.dataset_streams = Streams(settings.max_dataset_streams, settings.dataset_workers)
    app.state.celery = celery_app(settings)
    app.state.broker_up, app.state.store_up = False, True
    tasks = [asyncio.create_task(_watch(app, repository, store, settings.reload_seconds, settings.store_poll_seconds,
                                        seen)),
             asyncio.create_task(_watch_broker(app, BROKER_SECONDS)),
             asyncio.create_task(_reap(store.jobs, settings.job_lost_seconds, settings.job_retention_days)),
             asyncio.create_task(_reconcile(store.jobs, app.state.celery, settings.reconcile_seconds))]
    log.info("serving %s from %s; store: %s", repository.names(), settings.repository, store.describe())
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        app.state.batcher.close()
        store.close()


def _revision(store: Store) -> int | None:
    try:
        return store.versions.revision()
    except StoreUnavailable:
        return None


async def _watch(app: FastAPI, repository: Repository, store: Store, rescan: float, poll: float,
                 seen: int | None) -> None:
    """Pick up new versions, alias moves and deletions while serving: the store's change counter is read every
    `poll` seconds (one indexed row) and the repository refreshed when it moved, or every `rescan` seconds for
    the shipped folders. The old version serves until the new one has loaded; a deleted one is unloaded. Whether
    the store answered is kept for /readyz. `seen`: the counter as the startup refresh found it."""
    last, down = time.monotonic(), False
    while True:
        await asyncio.sleep(min(poll, rescan))
        try:
            revision = await run_in_threadpool(store.versions.revision)
            if revision != seen or time.monotonic() - last >= rescan:
                await run_in_threadpool(repository.refresh)
                seen, last = revision, time.monotonic()
            down = False
            app.state.store_up = True
        except StoreUnavailable:
            app.state.store_up = False
            if not down:  # once per outage, not four times a second
                log.warning("the store is not answering; still serving what was loaded")
            down = True
        except Exception:
            log.exception("repository refresh failed; still serving what was loaded")


BROKER_SECONDS = 2.0  # how often the broker is pinged for /readyz


async def _watch_broker(app: FastAPI, seconds: float) -> None:
    """Whether Redis answers, asked by one task every `seconds` (each ping bounded by its own timeout), so
    /readyz answers at once whatever Redis does."""
    while True:
        app.state.broker_up = await run_in_threadpool(broker_answers, app.state.celery)
        await asyncio.sleep(seconds)


async def _reconcile(store: JobRecords, celery, seconds: float) -> None:
    """At start and then every `seconds`: queued jobs whose message the broker lost are sent again (once)."""
    while True:
        try:
            for job_id in await run_in_threadpool(reconcile, store, celery, seconds):
                log.warning("job %s was queued but its message was not in the broker: sent again, or failed", job_id)
        except Exception as exc:  # Redis down: nothing to compare with now; the next round will
            log.info("queued jobs not reconciled this round: %s", type(exc).__name__)
        await asyncio.sleep(seconds)


PRUNE_SECONDS = 3600.0  # finished records past the retention period are deleted this often


async def _reap(store: JobRecords, lost_after: float, retention_days: float) -> None:
    """Jobs whose worker died mid-training end failed instead of running forever; finished records older than
    the retention period are pruned (at start, then hourly)."""
    pruned: float | None = None
    while True:
        try:
            if retention_days > 0 and (pruned is None or time.monotonic() - pruned >= PRUNE_SECONDS):
                count = await run_in_threadpool(store.prune, retention_days, dt.datetime.now(dt.timezone.utc))
                pruned = time.monotonic()
                if count:
                    log.info("pruned %d finished job records older than %g days", count, retention_days)
            for job_id in await run_in_threadpool(store.reap, lost_after, now()):
                log.warning("job %s failed: its worker stopped sending heartbeats", job_id)
        except Exception as exc:  # the store restarting: the next round will
            log.warning("reaping lost jobs failed this round: %s", exc)
        await asyncio.sleep(min(5.0, lost_after / 3))


ROUTERS = (samples.router, health.router, models.router, translate.router, datasets.router, jobs.router,
           data.router, pages.router)


def create_app(settings: Settings | None = None, routers: tuple[APIRouter, ...] = ()) -> FastAPI:
    """The app, configured by `settings` (default: the environment's, GANSERVE_*), with ROUTERS and any
    `routers` of a caller's own after them (docs/extending.md)."""
    settings = settings or get_settings()
    app = FastAPI(title="ganserve", version="1", lifespan=lifespan, docs_url=None, redoc_url=None,
                  generate_unique_id_function=operation_id,
                  description="Samples from generative adversarial networks, and training jobs, over HTTP.")
    app.state.settings = settings
    app.state.keys = Keys(settings.keys, settings.admins)
    errors.install(app)
    docs.install(app)
    # The sample routes first: a request is matched against the routes in order (~10 % of an n=1 request's
    # time went to trying the others first); no two routers' paths overlap, so the order changes nothing else.
    routers = (*ROUTERS, *routers)
    for router in routers:
        app.include_router(router)
    origins = [o.strip() for o in settings.cors_origins.split(",") if o.strip()]
    if origins:
        app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=["*"],
                           allow_headers=["authorization", "content-type"], expose_headers=["*"])
    # Outermost: before any body is read. Each router's own routes carry their full paths and dependencies.
    app.add_middleware(Guard, routes=[route for router in routers for route in router.routes], settings=settings,
                       keys=app.state.keys)
    return app


def operation_id(route: APIRoute) -> str:
    """A route without an explicit operation_id is named after its function: list_models -> listModels."""
    head, *rest = route.name.split("_")
    return head + "".join(word.title() for word in rest)


def __getattr__(name: str):
    # `uvicorn service.app:app` works, yet importing this module builds nothing.
    if name == "app":
        return create_app()
    raise AttributeError(name)
