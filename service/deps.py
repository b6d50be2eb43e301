"""FastAPI dependencies: settings, the repository, the job store, the Celery client, API keys."""
from __future__ import annotations

import hmac
from typing import Annotated

from celery import Celery
from fastapi import Depends, Header, HTTPException, Request

from service.jobstore import JobStore
from service.repository import Repository
from service.settings import Settings, get_settings


def repository(request: Request) -> Repository:
    return request.app.state.repository


def job_store(request: Request) -> JobStore:
    return request.app.state.jobs


def celery(request: Request) -> Celery:
    return request.app.state.celery


def require_key(settings: Annotated[Settings, Depends(get_settings)],
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


SettingsDep = Annotated[Settings, Depends(get_settings)]
RepositoryDep = Annotated[Repository, Depends(repository)]
JobStoreDep = Annotated[JobStore, Depends(job_store)]
CeleryDep = Annotated[Celery, Depends(celery)]
KeyDep = Depends(require_key)
