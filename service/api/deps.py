"""FastAPI dependencies: settings, the repository, the job store, the Celery client, API keys."""
from __future__ import annotations

import hmac
from typing import Annotated

from celery import Celery
from fastapi import Depends, Header, HTTPException, Request

from service.jobs.store import JobStore
from service.repository import Repository
from service.sampling.batching import Batcher
from service.settings import Settings, get_settings


# Async on purpose: FastAPI runs a plain `def` dependency in the thread pool, a hop that costs about
# as much as sampling one image (measured ~60 µs each under load).
async def settings() -> Settings:
    return get_settings()


async def repository(request: Request) -> Repository:
    return request.app.state.repository


async def batcher(request: Request) -> Batcher:
    return request.app.state.batcher


async def job_store(request: Request) -> JobStore:
    return request.app.state.jobs


async def celery(request: Request) -> Celery:
    return request.app.state.celery


async def require_key(settings: Annotated[Settings, Depends(settings)],
                authorization: Annotated[str | None, Header()] = None) -> None:
    """Job submission, cancel and uploads need `Authorization: Bearer <key>` when keys are configured."""
    keys = settings.keys
    if not keys:
        return
    if not authorization or not authorization.startswith("Bearer "):
        raise HTTPException(401, "authorization: this endpoint needs 'Authorization: Bearer <api key>'",
                            headers={"WWW-Authenticate": "Bearer"})
    given = authorization.removeprefix("Bearer ").strip().encode()
    if not any(hmac.compare_digest(given, key.encode()) for key in keys):  # constant time
        raise HTTPException(403, "authorization: the API key is not valid")


SettingsDep = Annotated[Settings, Depends(settings)]
RepositoryDep = Annotated[Repository, Depends(repository)]
BatcherDep = Annotated[Batcher, Depends(batcher)]
JobStoreDep = Annotated[JobStore, Depends(job_store)]
CeleryDep = Annotated[Celery, Depends(celery)]
KeyDep = Depends(require_key)
