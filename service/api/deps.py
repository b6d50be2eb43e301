"""FastAPI dependencies: settings, the repository, the job store, the Celery client, API keys."""
from __future__ import annotations

from typing import Annotated

from celery import Celery
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from service.api.keys import Caller, Keys, parse
from service.jobs.store import JobStore
from service.repository import Repository
from service.sampling.batching import Batcher
from service.sampling.datasets import Streams
from service.settings import Settings


# Async on purpose: FastAPI runs a plain `def` dependency in the thread pool, a hop that costs about
# as much as sampling one image (measured ~60 µs each under load).
async def settings(request: Request) -> Settings:
    return request.app.state.settings


async def repository(request: Request) -> Repository:
    return request.app.state.repository


async def batcher(request: Request) -> Batcher:
    return request.app.state.batcher


async def dataset_streams(request: Request) -> Streams:
    return request.app.state.dataset_streams


async def job_store(request: Request) -> JobStore:
    return request.app.state.jobs


async def celery(request: Request) -> Celery:
    return request.app.state.celery


# auto_error=False: a missing or malformed header reaches require_key, which answers with this service's
# own error body; the scheme puts the key in the OpenAPI schema (and Swagger UI's Authorize button).
bearer = HTTPBearer(auto_error=False, scheme_name="apiKey",
                    description="an API key from GANSERVE_API_KEYS, sent as `Authorization: Bearer <key>`")


def key_refusal(authorization: str | None, caller: Caller, keys: Keys) -> HTTPException | None:
    """Why a keyed route refuses a request (401 without a key, 403 with an unknown one), or None."""
    if not keys.required or caller.keyed:
        return None
    if parse(authorization) is None:
        return HTTPException(401, "authorization: this endpoint needs 'Authorization: Bearer <api key>'",
                             headers={"WWW-Authenticate": "Bearer"})
    return HTTPException(403, "authorization: the API key is not valid")


async def require_key(request: Request,
                      credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Caller:
    """Keyed routes need `Authorization: Bearer <key>` when keys are configured (service/api/guard.py
    checks it before the body is read; this declares it in the schema and checks it again). The caller."""
    caller = request.state.caller
    refusal = key_refusal(request.headers.get("authorization"), caller, request.app.state.keys)
    if refusal is not None:
        raise refusal
    return caller


SettingsDep = Annotated[Settings, Depends(settings)]
RepositoryDep = Annotated[Repository, Depends(repository)]
BatcherDep = Annotated[Batcher, Depends(batcher)]
JobStoreDep = Annotated[JobStore, Depends(job_store)]
DatasetStreamsDep = Annotated[Streams, Depends(dataset_streams)]
CeleryDep = Annotated[Celery, Depends(celery)]
KeyDep = Depends(require_key)
CallerDep = Annotated[Caller, Depends(require_key)]
