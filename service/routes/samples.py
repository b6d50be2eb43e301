"""Samples: validate, get the model, sample, encode. Blocking work runs off the event loop."""
from __future__ import annotations

import secrets
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from starlette.concurrency import run_in_threadpool

from service import encoding, sampling
from service.deps import RepositoryDep, SettingsDep
from service.errors import LimitError
from service.schemas import SampleRequest
from service.settings import Settings

router = APIRouter(prefix="/v1/models", tags=["samples"])


def check_limits(request: SampleRequest, settings: Settings) -> None:
    if request.n > settings.max_n:
        raise LimitError(f"n: at most {settings.max_n} samples per request, got {request.n}")
    if request.mode == "nice":
        if request.oversample > settings.max_oversample:
            raise LimitError(f"oversample: at most {settings.max_oversample}, got {request.oversample}")
        if request.n * request.oversample > settings.max_candidates:
            raise LimitError(f"n × oversample: at most {settings.max_candidates} candidates, "
                             f"got {request.n * request.oversample}")
    if request.grid is not None and request.grid[0] * request.grid[1] > settings.max_n:
        raise LimitError(f"grid: at most {settings.max_n} cells, got {request.grid[0] * request.grid[1]}")


async def respond(name: str, request: SampleRequest, repository, settings: Settings) -> Response:
    check_limits(request, settings)
    seed = request.seed if request.seed is not None else secrets.randbelow(2**31)
    request = request.model_copy(update={"seed": seed})
    model = repository.get(name, request.version)
    labels = sampling.resolve_labels(model, request.labels, request.n)
    result = await run_in_threadpool(sampling.sample, model, request.n, seed, request.mode,
                                     request.oversample, labels)
    body = await run_in_threadpool(encoding.encode, result, request.format, request.grid)
    headers = {"X-Model": model.name, "X-Model-Version": str(model.version), "X-Seed": str(seed)}
    return Response(body, media_type=encoding.MEDIA_TYPES[request.format], headers=headers)


@router.post("/{name}/samples")
async def post_samples(name: str, request: SampleRequest, repository: RepositoryDep,
                       settings: SettingsDep) -> Response:
    """Samples as JSON, a PNG grid or plot, a zip of PNGs, or .npy/.npz arrays."""
    return await respond(name, request, repository, settings)


@router.get("/{name}/samples.png", response_class=Response,
            responses={200: {"content": {"image/png": {}}}})
async def get_samples_png(
    name: str, repository: RepositoryDep, settings: SettingsDep,
    n: Annotated[int, Query(ge=1)] = 16,
    seed: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
    mode: Literal["plain", "nice"] = "plain",
    oversample: Annotated[int, Query(ge=1)] = 20,
    labels: Annotated[str | None, Query(description="comma-separated, one per sample")] = None,
    version: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    """A PNG grid (or plot) a browser or an <img> can show."""
    request = SampleRequest(n=n, seed=seed, mode=mode, oversample=oversample, format="png", version=version,
                            labels=labels.split(",") if labels else None)
    return await respond(name, request, repository, settings)
