"""Training jobs: submit (202), list, read, cancel."""
from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from service import jobs
from service.deps import CeleryDep, JobStoreDep, KeyDep, SettingsDep
from service.schemas import JobRequest

router = APIRouter(prefix="/v1", tags=["jobs"])


def _view(record: dict, request: Request) -> dict:
    """A job record with its links."""
    base = str(request.url_for("get_job", job_id=record["id"]))
    return {**record, "links": {"self": base, "events": base + "/events"}}


@router.get("/families")
def list_families() -> dict:
    """Each family with its hyper-parameters, defaults and limits."""
    return {"families": jobs.catalog()}


@router.post("/jobs", status_code=202, dependencies=[KeyDep])
async def submit_job(body: JobRequest, request: Request, settings: SettingsDep, store: JobStoreDep,
                     celery: CeleryDep) -> JSONResponse:
    record = await run_in_threadpool(jobs.submit, body.model_dump(), settings, store, celery)
    view = _view(record, request)
    return JSONResponse(view, status_code=202, headers={"Location": view["links"]["self"]})


@router.get("/jobs")
def list_jobs(request: Request, store: JobStoreDep,
              state: Literal["queued", "running", "succeeded", "failed", "cancelled"] | None = None) -> dict:
    return {"jobs": [_view(r, request) for r in store.list(state)]}


@router.get("/jobs/{job_id}")
def get_job(job_id: str, request: Request, store: JobStoreDep) -> dict:
    return _view(store.read(job_id), request)


@router.delete("/jobs/{job_id}", dependencies=[KeyDep])
def cancel_job(job_id: str, request: Request, store: JobStoreDep) -> dict:
    return _view(jobs.cancel(job_id, store), request)
