"""Training jobs: submit (202), list, read, cancel."""
from __future__ import annotations

import asyncio
import json
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from service.api.deps import CallerDep, CeleryDep, JobStoreDep, KeyDep, SettingsDep, StoreDep
from service.api.responses import Families, Job, Jobs, content, error_responses
from service.api.schemas import JobRequest
from service.api.strict import StrictJSONRoute
from service.jobs import submit as jobs
from service.jobs.protocol import FINAL, catalog
from service.store import UnknownJob

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
                     store: StoreDep, celery: CeleryDep, caller: CallerDep) -> dict:
    """Validate, record and queue a training job; 202 at once, with its Location. The job is the key's."""
    record = await run_in_threadpool(jobs.submit, body.model_dump(), settings, store, celery, caller)
    view = _view(record, request)
    response.headers["Location"] = view["links"]["self"]
    return view


@router.get("/jobs", operation_id="listJobs", response_model=Jobs, dependencies=[KeyDep],
            responses=error_responses(401, 403, 422))
def list_jobs(request: Request, store: JobStoreDep, caller: CallerDep,
              state: Literal["queued", "running", "succeeded", "failed", "cancelled"] | None = None,
              limit: Annotated[int, Query(ge=1, le=200, description="jobs per page")] = 20,
              cursor: Annotated[str | None, Query(max_length=200, description="the previous page's next_cursor")] = None,
              history: Annotated[bool, Query(description="include each job's progress history (most of a "
                                                         "record's bytes); GET /v1/jobs/{id} always has it")] = False
              ) -> dict:
    """The key's jobs (an admin's: every job), newest first, a page at a time (optionally of one state): pass
    `next_cursor` back as `cursor`."""
    page, next_cursor = store.page(state=state, owner=caller.sees, limit=limit, cursor=cursor, history=history)
    return {"jobs": [_view(r, request) for r in page], "next_cursor": next_cursor}


@router.get("/jobs/{job_id}", operation_id="getJob", response_model=Job, dependencies=[KeyDep],
            responses=error_responses(401, 403, 404, 422))
def get_job(job_id: str, request: Request, store: JobStoreDep, caller: CallerDep) -> dict:
    """One of the key's jobs; another key's is 404, as if it did not exist."""
    return _view(store.read(job_id, caller.sees), request)


@router.delete("/jobs/{job_id}", dependencies=[KeyDep], operation_id="cancelJob", response_model=Job,
               responses=error_responses(401, 403, 404, 422))
def cancel_job(job_id: str, request: Request, store: JobStoreDep, caller: CallerDep) -> dict:
    """Ask a job to stop: a queued one never starts, a running one stops at its next step."""
    store.read(job_id, caller.sees)  # another key's job: 404
    return _view(jobs.cancel(job_id, store), request)


POLL_SECONDS = 0.25
KEEPALIVE_SECONDS = 15.0


@router.get("/jobs/{job_id}/events", operation_id="jobEvents", response_class=StreamingResponse, dependencies=[KeyDep],
            responses={200: {"content": content("text/event-stream", text=True)},
                       **error_responses(401, 403, 404, 422)})
async def job_events(job_id: str, request: Request, store: JobStoreDep, caller: CallerDep) -> StreamingResponse:
    """Server-sent events: `progress` for each new report, `state` for each change; ends when the job does."""
    await run_in_threadpool(store.read, job_id, caller.sees)  # 404 before the stream starts

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


@router.get("/jobs/{job_id}/snapshots/{file}", operation_id="getJobSnapshot", response_class=Response,
            dependencies=[KeyDep], responses={200: {"content": content("image/png")},
                                              **error_responses(401, 403, 404, 422)})
def job_snapshot(job_id: str, file: str, store: JobStoreDep, caller: CallerDep) -> Response:
    """A sample grid (or plot) the trainer drew at some step."""
    store.read(job_id, caller.sees)
    step = file.removesuffix(".png")
    png = store.snapshot(job_id, int(step)) if step.isascii() and step.isdigit() and len(step) < 10 else None
    if png is None:
        raise UnknownJob(f"job {job_id} has no snapshot {file[:40]!r}")
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=86400"})
