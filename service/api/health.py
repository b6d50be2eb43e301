"""Liveness, readiness, metrics and the configured limits."""
from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service.api.deps import RepositoryDep, SettingsDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(repository: RepositoryDep) -> dict:
    """Ready once the repository has been scanned and loaded at start-up."""
    return {"status": "ready", "models": repository.names()}


@router.get("/v1/limits")
def limits(settings: SettingsDep) -> dict:
    names = ("max_n", "max_oversample", "max_candidates", "max_grid", "max_dataset_n", "max_steps",
             "max_job_seconds", "max_upload_bytes", "max_upload_files", "max_image_pixels", "max_upload_pixels")
    return {name: getattr(settings, name) for name in names}


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
def prometheus() -> Response:
    """Prometheus text exposition of the sampling metrics (and the process's own)."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
