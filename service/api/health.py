"""Liveness, readiness, metrics and the configured limits."""
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service.api.deps import RepositoryDep, SettingsDep
from service.api.responses import Limits, Ready, Status, content, error_responses
from service.api.strict import StrictJSONRoute

router = APIRouter(tags=["health"], responses=error_responses(), route_class=StrictJSONRoute)
LIMITS = tuple(Limits.model_fields)


@router.get("/healthz", operation_id="getHealth", response_model=Status)
async def healthz() -> dict:  # async: a plain def would cost a thread hop per probe
    return {"status": "ok"}


@router.get("/readyz", operation_id="getReady", response_model=Ready, responses={503: {"model": Ready}})
async def readyz(request: Request, repository: RepositoryDep) -> JSONResponse:
    """Ready (200) once some model serves by default; 503 while none does. Redis is reported apart: sampling
    works without it, job submission does not. Its state is the broker watcher's last answer (service/app.py),
    never asked here: a hanging Redis would otherwise hold a thread per probe."""
    serving = [name for name in repository.names() if repository.entry(name).default in repository.entry(name).loaded]
    redis = "up" if request.app.state.broker_up else "down"
    body = Ready(status="ready" if serving else "not ready", models=serving, redis=redis)
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
