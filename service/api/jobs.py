"""Training jobs: submit (202), list, read, cancel."""
from __future__ import annotations

import asyncio
import json
from typing import Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from service.api.deps import CeleryDep, JobStoreDep, KeyDep, SettingsDep
from service.api.responses import Families, Job, Jobs, content, error_responses
from service.api.schemas import JobRequest
from service.api.strict import StrictJSONRoute
from service.jobs import submit as jobs
from service.jobs.protocol import FINAL, catalog
from service.jobs.store import UnknownJob

router = APIRouter(prefix="/v1", tags=["jobs"], responses=error_responses(), route_class=StrictJSONRoute)


def _view(record: dict, request: Request) -> dict:
    """A job record with its links."""
    base = str(request.url_for("get_job", job_id=record["id"]))
    snapshots = [{**s, "url": f"{base}/snapshots/{s['file']}"} for s in record.get("snapshots", [])]
    links = {"self": base, "events": base + "/events"}
    if record.get("result"):
        result = record["result"]
        links["model"] = str(request.url_for("get_model", name=result["model"])) + f"?version={result['version']}"
    return {**record, "snapshots": snapshots, "links": links}


@router.get("/families", operation_id="listFamilies", response_model=Families)
def list_families() -> dict:
    """Each family with its hyper-parameters, defaults and limits, and its quality gate's bars."""
    return {"families": catalog()}


@router.post("/jobs", status_code=202, dependencies=[KeyDep], operation_id="submitJob", response_model=Job,
             responses=error_responses(401, 403, 422, 503))
async def submit_job(body: JobRequest, request: Request, response: Response, settings: SettingsDep,
                     store: JobStoreDep, celery: CeleryDep) -> dict:
    """Validate, record and queue a training job; 202 at once, with its Location."""
    owner = request.state.caller.bucket  # queue bounds and quotas count per key (or address)
    record = await run_in_threadpool(jobs.submit, body.model_dump(), settings, store, celery, owner)
    view = _view(record, request)
    response.headers["Location"] = view["links"]["self"]
    return view


@router.get("/jobs", operation_id="listJobs", response_model=Jobs, dependencies=[KeyDep],
            responses=error_responses(401, 403, 422))
def list_jobs(request: Request, store: JobStoreDep,
              state: Literal["queued", "running", "succeeded", "failed", "cancelled"] | None = None) -> dict:
    return {"jobs": [_view(r, request) for r in store.list(state)]}


@router.get("/jobs/{job_id}", operation_id="getJob", response_model=Job, dependencies=[KeyDep],
            responses=error_responses(401, 403, 404, 422))
def get_job(job_id: str, request: Request, store: JobStoreDep) -> dict:
    return _view(store.read(job_id), request)


@router.delete("/jobs/{job_id}", dependencies=[KeyDep], operation_id="cancelJob", response_model=Job,
               responses=error_responses(401, 403, 404, 422))
def cancel_job(job_id: str, request: Request, store: JobStoreDep) -> dict:
    """Ask a job to stop: a queued one never starts, a running one stops at its next step."""
    return _view(jobs.cancel(job_id, store), request)


POLL_SECONDS = 0.25
KEEPALIVE_SECONDS = 15.0


@router.get("/jobs/{job_id}/events", operation_id="jobEvents", response_class=StreamingResponse, dependencies=[KeyDep],
            responses={200: {"content": content("text/event-stream", text=True)},
                       **error_responses(401, 403, 404, 422)})
async def job_events(job_id: str, request: Request, store: JobStoreDep) -> StreamingResponse:
    """Server-sent events: `progress` for each new report, `state` for each change; ends when the job does."""
    store.read(job_id)  # 404 before the stream starts

    async def stream():
        last_state, last_step, quiet = None, None, 0.0
        while not await request.is_disconnected():
            record = await run_in_threadpool(store.read, job_id)
            step = record["progress"]["step"]
            if record["latest"] and step != last_step:
                last_step = step
                yield _event("progress", {"progress": record["progress"], "latest": record["latest"],
                                          "snapshots": record["snapshots"][-1:]})
                quiet = 0.0
            if record["state"] != last_state:  # after progress: a stream's last event is its final state
                last_state = record["state"]
                yield _event("state", {"id": job_id, "state": last_state, "error": record["error"],
                                       "result": record["result"]})
            if last_state in FINAL:
                return
            await asyncio.sleep(POLL_SECONDS)
            quiet += POLL_SECONDS
            if quiet >= KEEPALIVE_SECONDS:  # keeps proxies from closing an idle stream
                quiet = 0.0
                yield ": keep-alive\n\n"

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _event(name: str, data: dict) -> str:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n"


@router.get("/jobs/{job_id}/snapshots/{file}", operation_id="getJobSnapshot", response_class=FileResponse,
            dependencies=[KeyDep], responses={200: {"content": content("image/png")},
                                              **error_responses(401, 403, 404, 422)})
def job_snapshot(job_id: str, file: str, settings: SettingsDep, store: JobStoreDep) -> FileResponse:
    """A sample grid (or plot) the trainer drew at some step."""
    store.read(job_id)
    step = file.removesuffix(".png")
    if not (step.isascii() and step.isdigit() and len(step) <= 12):  # a step number, not a path (nor a long one)
        raise UnknownJob(f"job {job_id} has no snapshot {file!r}")
    path = settings.jobs_dir / job_id / file
    if not path.exists():
        raise UnknownJob(f"job {job_id} has no snapshot {file!r}")
    return FileResponse(path, media_type="image/png")
