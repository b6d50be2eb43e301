"""Liveness, readiness, metrics and the configured limits."""
from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service.api.deps import RepositoryDep, SettingsDep
from service.api.responses import Limits, Ready, Status, content, error_responses
from service.api.strict import StrictJSONRoute

router = APIRouter(tags=["health"], responses=error_responses(), route_class=StrictJSONRoute)
LIMITS = tuple(Limits.model_fields)


@router.get("/healthz", operation_id="getHealth", response_model=Status)
def healthz() -> dict:
    return {"status": "ok"}


@router.get("/readyz", operation_id="getReady", response_model=Ready)
def readyz(repository: RepositoryDep) -> dict:
    """Ready once the repository has been scanned and loaded at start-up."""
    return {"status": "ready", "models": repository.names()}


@router.get("/v1/limits", operation_id="getLimits", response_model=Limits)
def limits(settings: SettingsDep) -> dict:
    """The configured limits (GANSERVE_MAX_*), as the error messages name them."""
    return {name: getattr(settings, name) for name in LIMITS}


@router.get("/metrics", operation_id="getMetrics", response_class=Response,
            responses={200: {"content": content(CONTENT_TYPE_LATEST, text=True)}})
def prometheus() -> Response:
    """Prometheus text exposition of the sampling metrics (and the process's own)."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
