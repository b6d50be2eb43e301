"""Samples: decode, prepare, run, encode (service/api/request.py). Blocking work runs off the event loop."""
from __future__ import annotations

import asyncio
import threading
from typing import Annotated, Literal

import anyio.to_thread
from fastapi import APIRouter, Query, Request, Response

from service import errors
from service.api.deps import BatcherDep, RepositoryDep, SettingsDep
from service.api.request import Prepared, Spec, prepare
from service.api.responses import SampledJson, error_responses, formats_content, late_formats
from service.api.schemas import ModeName, SampleRequest
from service.api.bodies import body_of, decode
from service.limits import LimitError
from service.repository import Repository
from service.sampling import metrics, modes, plans
from service.sampling.batching import Batcher
from service.sampling.budget import WorkBudget
from service.sampling.latents import PSI_MAX
from service.sampling.samples import Samples
from service.sampling.steering import Walk
from service.settings import Settings

router = APIRouter(prefix="/v1/models", tags=["samples"], responses=error_responses(404, 422, 503))
late_formats("sampleModel", "samples")


async def respond(spec: Spec, repository: Repository, settings: Settings, batcher: Batcher, work: WorkBudget,
                  gone) -> Response:
    """`gone` tells whether the client has left (Request.is_disconnected): a large request then stops."""
    with metrics.Observed(spec.mode, spec.format, errors.status_of) as observed:
        prepared = await prepare(spec, "samples", repository, settings)
        observed.model = prepared.model
        field = "oversample" if prepared.mode.draws_candidates else "n"
        # a full queue, or a full memory budget, refuses here, before any work
        with batcher.admit(prepared.model.name), work.hold(prepared.work_bytes, field):
            result, body = await sample_and_encode(prepared, settings, batcher, gone)
        observed.result = result
    return Response(body, media_type=prepared.encoder.media_type, headers=prepared.headers(result))


async def sample_and_encode(prepared: Prepared, settings: Settings, batcher: Batcher, gone) -> tuple[Samples, bytes]:
    """Run a sampling plan with batched calls, and encode; what takes long runs off the event loop.

    Small requests run their plan on the event loop, awaiting each batched call, since a thread
    hop would cost more than the numpy work around the calls; encoding leaves the loop unless it
    is a plain copy. Large requests run plan and encoder in one thread.
    """
    name = prepared.model.name
    if prepared.candidates > batcher.max_rows:
        cancel = threading.Event()
        watcher = asyncio.create_task(_watch_client(gone, cancel))
        try:
            return await anyio.to_thread.run_sync(_sample_and_encode, prepared, batcher, cancel,
                                                  limiter=batcher.limiter)
        finally:
            watcher.cancel()
    with batcher.sampling(name):
        result = await plans.run_async(prepared.plan(), batcher.run_async)
    if prepared.encoder.cheap(result):
        return result, prepared.encode(result)
    return result, await anyio.to_thread.run_sync(prepared.encode, result, limiter=batcher.limiter)


async def _watch_client(gone, cancel: threading.Event) -> None:
    """Set `cancel` once the client has gone, so a large request stops within a batch instead of running on."""
    while not await gone():
        await asyncio.sleep(0.25)
    cancel.set()


def _sample_and_encode(prepared: Prepared, batcher: Batcher, cancel: threading.Event):
    """Large requests: one thread runs the plan (its calls still batched) and the encoder."""
    with batcher.sampling(prepared.model.name):
        result = plans.run(prepared.plan(), batcher.run, cancel)
    return result, prepared.encode(result)


@router.post("/{name}/samples", operation_id="sampleModel", response_class=Response, responses={200: {
    "model": SampledJson, "description": "the samples in the requested format", "content": formats_content("samples")}},
    openapi_extra=body_of(SampleRequest))
async def post_samples(name: str, http: Request) -> Response:
    """Samples as JSON, a PNG grid or plot, a zip of PNGs, or .npy/.npz arrays."""
    # The busiest route decodes its own body and reads the app's state itself: resolving the body and three
    # dependencies cost ~15 % of the server's time on an n=1 request (profiled).
    body = await decode(http, SampleRequest)
    state = http.app.state
    return await respond(body.spec(name), state.repository, state.settings, state.batcher, state.work,
                         http.is_disconnected)


@router.get("/{name}/samples.png", operation_id="samplePng", response_class=Response,
            responses={200: {"content": formats_content("png"), "description": "a PNG grid, row or plot"}})
async def get_samples_png(
    name: str, http: Request, repository: RepositoryDep, settings: SettingsDep, batcher: BatcherDep,
    n: Annotated[int | None, Query(ge=1, description="default 16, or the sum of label counts")] = None,
    seed: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
    mode: ModeName = modes.DEFAULT,
    oversample: Annotated[int | None, Query(ge=1, description="default: the model's own (its card's ranking), "
                                                         "else 20")] = None,
    threshold: Annotated[float | None, Query(gt=0, le=1, description="filtered: the confidence a sample's label "
                                             "needs")] = None,
    labels: Annotated[str | None, Query(description="comma-separated, one per sample (3,3,7), "
                                        "or label:count pairs (0:4,1:4)")] = None,
    grid: Annotated[str | None, Query(pattern=r"^\d{1,6}x\d{1,6}$", description="ROWSxCOLS")] = None,
    version: Annotated[int | None, Query(ge=1)] = None,
    truncation: Annotated[float, Query(gt=0, le=PSI_MAX, description=f"ψ in (0, {PSI_MAX:g}]; 1: off; "
                                       "below 1 truncation, above 1 expansion")] = 1.0,
    walk: Annotated[str | None, Query(pattern=r"^\d{1,19}\.\.\d{1,19}$",
                                      description="FROM..TO: a walk from sample 0 of seed FROM to sample 0 of "
                                                  "seed TO, drawn as a row")] = None,
    steps: Annotated[int | None, Query(ge=2, description="samples along the walk; default 8")] = None,
    method: Annotated[Literal["slerp", "lerp"] | None, Query(description="the walk's path")] = None,
) -> Response:
    """A PNG grid (or plot) a browser or an <img> can show."""
    path = None
    if walk is not None:
        start, end = (int(x) for x in walk.split(".."))
        path = Walk(start, end, steps or WALK_STEPS, method)
    elif steps is not None or method is not None:
        raise LimitError(f"{'steps' if steps is not None else 'method'}: only with walk=FROM..TO")
    spec = Spec(model=name, version=version, n=n, seed=seed, mode=mode, oversample=oversample, threshold=threshold,
                labels=parse_labels(labels), format=PNG, grid=None if grid is None else tuple(int(x) for x in
                                                                                      grid.split("x")),
                truncation=truncation, walk=path)
    return await respond(spec, repository, settings, batcher, http.app.state.work, http.is_disconnected)


PNG = "png"  # what an <img> shows


WALK_STEPS = 8


def parse_labels(text: str | None) -> list[str] | dict[str, int] | None:
    """'3,3,7' -> ['3', '3', '7']; '0:4,1:4' -> {'0': 4, '1': 4}."""
    if not text:
        return None
    parts = [p.strip() for p in text.split(",")]
    if not all(":" in p for p in parts):
        return parts
    counts = {}
    for part in parts:
        label, _, count = part.rpartition(":")
        if not (count.isascii() and count.isdigit()) or len(count) > 6:
            raise LimitError(f"labels: {part!r} is not label:count with a count of at most 6 digits")
        counts[label] = counts.get(label, 0) + int(count)
    return counts
