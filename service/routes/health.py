"""Liveness, readiness and the configured limits."""
from fastapi import APIRouter

from service.deps import RepositoryDep, SettingsDep

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
    return {"max_n": settings.max_n, "max_oversample": settings.max_oversample,
            "max_candidates": settings.max_candidates, "max_steps": settings.max_steps}
