"""create_app(): lifespan (load models, watch for new versions), routers, error handlers."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os

from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from service import errors
from service.api import data, datasets, docs, health, jobs, models, pages, samples, translate
from service.api.guard import Guard
from service.api.keys import Keys
from service.jobs.store import JobStore
from service.jobs.submit import broker_answers, celery_app, reconcile
from service.repository import Repository
from service.sampling.batching import Batcher
from service.sampling.budget import WorkBudget
from service.sampling.datasets import Streams
from service.settings import Settings, get_settings

log = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI):
    settings = app.state.settings
    repository = Repository(settings.repositories, threads=settings.ort_threads,
                            cores=max(1, (os.cpu_count() or 1) // max(1, settings.processes)))
    await run_in_threadpool(repository.refresh)
    app.state.repository = repository
    app.state.batcher = Batcher(settings.batch_rows, settings.batch_wait_ms / 1000, settings.queue_requests,
                                settings.inline_ms / 1000)
    app.state.jobs = JobStore(settings.jobs_dir)
    app.state.work = WorkBudget(settings.max_work_bytes)
    app.state.dataset_streams = Streams(settings.max_dataset_streams, settings.dataset_workers)
    app.state.celery = celery_app(settings)
    app.state.broker_up = False
    watcher = asyncio.create_task(_watch(repository, settings.reload_seconds))
    broker = asyncio.create_task(_watch_broker(app, BROKER_SECONDS))
    reaper = asyncio.create_task(_reap(app.state.jobs, settings.job_lost_seconds))
    reconciler = asyncio.create_task(_reconcile(app.state.jobs, app.state.celery, settings.reconcile_seconds))
    log.info("serving %s from %s", repository.names(), settings.repository)
    try:
        yield
    finally:
        watcher.cancel()
        broker.cancel()
        app.state.batcher.close()
        reaper.cancel()
        reconciler.cancel()


async def _watch(repository: Repository, seconds: float) -> None:
    """Pick up new versions while serving; the old version serves until the new one has loaded."""
    while True:
        await asyncio.sleep(seconds)
        try:
            await run_in_threadpool(repository.refresh)
        except Exception:
            log.exception("repository refresh failed; still serving what was loaded")


BROKER_SECONDS = 2.0  # how often the broker is pinged for /readyz


async def _watch_broker(app: FastAPI, seconds: float) -> None:
    """Whether Redis answers, asked by one task every `seconds` (each ping bounded by its own timeout), so
    /readyz answers at once whatever Redis does."""
    while True:
        app.state.broker_up = await run_in_threadpool(broker_answers, app.state.celery)
        await asyncio.sleep(seconds)


async def _reconcile(store: JobStore, celery, seconds: float) -> None:
    """At start and then every `seconds`: queued jobs whose message the broker lost are sent again (once)."""
    while True:
        try:
            for job_id in await run_in_threadpool(reconcile, store, celery, seconds):
                log.warning("job %s was queued but its message was not in the broker: sent again, or failed", job_id)
        except Exception as exc:  # Redis down: nothing to compare with now; the next round will
            log.info("queued jobs not reconciled this round: %s", type(exc).__name__)
        await asyncio.sleep(seconds)


async def _reap(store: JobStore, lost_after: float) -> None:
    """Jobs whose worker died mid-training end failed instead of running forever."""
    while True:
        await asyncio.sleep(min(5.0, lost_after / 3))
        try:
            for job_id in await run_in_threadpool(store.reap, lost_after):
                log.warning("job %s failed: its worker stopped sending heartbeats", job_id)
        except Exception:
            log.exception("reaping lost jobs failed")


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
