"""Samples: validate, get the model, sample, encode. Blocking work runs off the event loop."""
from __future__ import annotations

import asyncio
import secrets
import threading
from typing import Annotated, Literal

import anyio.to_thread
from fastapi import APIRouter, Query, Request, Response

from service import errors
from service.api.deps import BatcherDep, RepositoryDep, SettingsDep
from service.api.limits import check_candidates, label_total, steered_n
from service.api.responses import Samples as SamplesBody, content, error_responses
from service.api.schemas import SampleRequest, WalkRequest
from service.api.strict import StrictJSONRoute
from service.errors import LimitError
from service.repository import Repository
from service.sampling import encoding, metrics, plans, resolve_labels, steering, translation
from service.sampling.latents import PSI_MAX
from service.sampling.modes import oversample_for
from service.sampling.batching import Batcher
from service.sampling.samples import Samples
from service.settings import Settings, get_settings

router = APIRouter(prefix="/v1/models", tags=["samples"], responses=error_responses(404, 422, 503),
                   route_class=StrictJSONRoute)


def check_limits(request: SampleRequest, settings: Settings) -> None:
    """Every configured limit, before any work; the message names the field and the limit.
    (The candidates are checked once the model, which may choose the oversample, is known.)"""
    label_total(request.labels, settings.max_n, "max_n")
    if request.n > settings.max_n:
        raise LimitError(f"n: at most {settings.max_n} samples per request (max_n), got {request.n}")
    if request.grid is not None:
        rows, cols = request.grid
        if request.format != "png":
            raise LimitError(f"grid: only for format 'png', not {request.format!r}")
        if rows * cols > settings.max_grid:
            raise LimitError(f"grid: at most {settings.max_grid} cells (max_grid), got {rows * cols}")
        if rows * cols < request.n:
            raise LimitError(f"grid: {rows}×{cols} holds {rows * cols} images, fewer than n={request.n}")


def with_implied_n(request: SampleRequest, settings: Settings) -> SampleRequest:
    """n where the request leaves it out (or null): the latents' rows or the walk's steps; the number of
    labels, or the sum of their counts; else DEFAULT_N. A client that sends every default sends no n."""
    n = steered_n(request, settings.max_n, "max_n")
    if n is None:
        n = label_total(request.labels, settings.max_n, "max_n")
        if request.n is not None:
            return request
        if n is not None and n < 1:
            raise LimitError("labels: no samples asked for; give at least one label or a count of at least 1")
    return request.model_copy(update={"n": DEFAULT_N if n is None else n})


DEFAULT_N = 16


async def respond(name: str, request: SampleRequest, repository: Repository, settings: Settings,
                  batcher: Batcher, gone) -> Response:
    """`gone` tells whether the client has left (Request.is_disconnected): a large request then stops."""
    with metrics.Observed(request.mode, request.format, errors.status_of) as observed:
        request = with_implied_n(request, settings)
        check_limits(request, settings)
        drawn = request.latents is None and request.walk is None
        seed = None if not drawn else request.seed if request.seed is not None else secrets.randbelow(2**31)
        model = observed.model = repository.get(name, request.version)
        translation.check_samples(model)
        request = request.model_copy(update={"oversample": oversample_for(model, request.mode, request.oversample)})
        check_candidates(request.mode, request.n, request.oversample, settings)
        labels = resolve_labels(model, request.labels, request.n)
        if request.grid is not None and model.card.kind != "image":
            raise LimitError(f"grid: only for image models; {model.name!r} makes {model.card.kind}")
        encoding.check(model.card.kind, request.format)
        steer = request.steering(model, settings)
        if steer.walk is not None:
            if request.labels is None:
                labels = steering.walk_labels(model, request.n)
            if request.grid is None and request.format == "png" and model.card.kind == "image":
                request = request.model_copy(update={"grid": (1, request.n)})  # a walk reads as a row
        steps = steering.plan(model, request.n, seed, request.mode, request.oversample, labels, steer)
        with batcher.admit(model.name):  # a full queue refuses here, before any work
            result, body = await sample_and_encode(model.name, steps, request, settings, batcher, gone)
        observed.result = result
    headers = {"X-Model": result.model, "X-Model-Version": str(result.version), "X-Candidates": str(result.candidates),
               "X-Ranking": result.ranking}
    if result.seed is not None:
        headers["X-Seed"] = str(result.seed)
    if result.acceptance is not None:
        headers["X-Acceptance-Rate"] = f"{result.acceptance:.6f}"
    return Response(body, media_type=encoding.MEDIA_TYPES[request.format], headers=headers)


async def sample_and_encode(name: str, steps: plans.Plan, request: SampleRequest, settings: Settings,
                            batcher: Batcher, gone) -> tuple[Samples, bytes]:
    """Run a sampling plan with batched calls, and encode; what takes long runs off the event loop.

    Small requests run their plan on the event loop, awaiting each batched call, since a thread
    hop would cost more than the numpy work around the calls; encoding leaves the loop unless it
    is a plain copy. Large requests run plan and encoder in one thread.
    """
    if candidates(request) > settings.batch_rows:
        cancel = threading.Event()
        watcher = asyncio.create_task(_watch_client(gone, cancel))
        try:
            return await anyio.to_thread.run_sync(_sample_and_encode, name, steps, request, batcher, cancel,
                                                  limiter=batcher.limiter)
        finally:
            watcher.cancel()
    with batcher.sampling(name):
        result = await plans.run_async(steps, batcher.run_async)
    if encoding.is_cheap(result, request.format):
        return result, encoding.encode(result, request.format, request.grid)
    return result, await anyio.to_thread.run_sync(encoding.encode, result, request.format, request.grid,
                                                  limiter=batcher.limiter)


def candidates(request: SampleRequest) -> int:
    return request.n if request.mode == "plain" else request.n * request.oversample


async def _watch_client(gone, cancel: threading.Event) -> None:
    """Set `cancel` once the client has gone, so a large request stops within a batch instead of running on."""
    while not await gone():
        await asyncio.sleep(0.25)
    cancel.set()


def _sample_and_encode(name: str, steps: plans.Plan, request: SampleRequest, batcher: Batcher,
                       cancel: threading.Event):
    """Large requests: one thread runs the plan (its calls still batched) and the encoder."""
    with batcher.sampling(name):
        result = plans.run(steps, batcher.run, cancel)
    return result, encoding.encode(result, request.format, request.grid)


@router.post("/{name}/samples", operation_id="sampleModel", response_class=Response, responses={200: {
    "model": SamplesBody, "description": "the samples in the requested format",
    "content": {"application/json": {}, **content("image/png", "image/gif", "image/webp", "application/zip",
                                                  "application/octet-stream")}}})
async def post_samples(name: str, body: SampleRequest, http: Request) -> Response:
    """Samples as JSON, a PNG grid or plot, a zip of PNGs, or .npy/.npz arrays."""
    # The busiest route reads the app's state itself: resolving three dependencies cost ~15 % of the
    # server's time on an n=1 request (profiled).
    state = http.app.state
    return await respond(name, body, state.repository, get_settings(), state.batcher, http.is_disconnected)


@router.get("/{name}/samples.png", operation_id="samplePng", response_class=Response,
            responses={200: {"content": content("image/png"), "description": "a PNG grid, row or plot"}})
async def get_samples_png(
    name: str, http: Request, repository: RepositoryDep, settings: SettingsDep, batcher: BatcherDep,
    n: Annotated[int | None, Query(ge=1, description="default 16, or the sum of label counts")] = None,
    seed: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
    mode: Literal["plain", "nice", "rejection", "filtered"] = "plain",
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
    fields = {"seed": seed, "mode": mode, "oversample": oversample, "format": "png", "version": version,
              "labels": parse_labels(labels), "truncation": truncation, "threshold": threshold}
    if n is not None:
        fields["n"] = n
    if grid is not None:
        fields["grid"] = tuple(int(x) for x in grid.split("x"))
    if walk is not None:
        start, end = (int(x) for x in walk.split(".."))
        fields["walk"] = WalkRequest(from_=start, to=end, steps=steps or WALK_STEPS, method=method)
    elif steps is not None or method is not None:
        raise LimitError(f"{'steps' if steps is not None else 'method'}: only with walk=FROM..TO")
    return await respond(name, SampleRequest(**fields), repository, settings, batcher, http.is_disconnected)


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
