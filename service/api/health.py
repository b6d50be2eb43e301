"""Liveness, readiness, metrics and the configured limits."""
from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from service.api.deps import CeleryDep, RepositoryDep, SettingsDep, StoreDep
from service.api.responses import Limits, Ready, Status, content, error_responses
from service.api.strict import StrictJSONRoute
from service.jobs.submit import broker_answers

router = APIRouter(tags=["health"], responses=error_responses(), route_class=StrictJSONRoute)
LIMITS = tuple(Limits.model_fields)


@router.get("/healthz", operation_id="getHealth", response_model=Status)
async def healthz() -> dict:  # async: a plain def would cost a thread hop per probe
    return {"status": "ok"}


@router.get("/readyz", operation_id="getReady", response_model=Ready, responses={503: {"model": Ready}})
async def readyz(repository: RepositoryDep, celery: CeleryDep, store: StoreDep) -> JSONResponse:
    """Ready (200) once some model serves by default; 503 while none does. Redis and the store are reported
    apart: sampling works without either, jobs and uploads do not."""
    serving = [name for name in repository.names() if repository.entry(name).default in repository.entry(name).loaded]
    redis = "up" if await run_in_threadpool(broker_answers, celery) else "down"
    database = "up" if await run_in_threadpool(store.ping) else "down"
    body = Ready(status="ready" if serving else "not ready", models=serving, redis=redis, store=database)
    return JSONResponse(body.model_dump(), status_code=200 if serving else 503)


@router.get("/v1/limits", operation_id="getLimits", response_model=Limits)
def limits(settings: SettingsDep) -> dict:
    """The configured limits (GANSERVE_MAX_*), as the error messages name them."""
    return {name: getattr(settings, name) for name in LIMITS}


@router.get("/metrics", operation_id="getMetrics", response_class=Response,
            responses={200: {"content": content(CONTENT_TYPE_LATEST, text=True)}})
def prometheus() -> Response:
    """Prometheus text exposition of the sampling metrics (and the process's own)."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
