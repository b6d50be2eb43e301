"""Bulk labelled samples for augmentation pipelines, streamed as npz or a zip of class folders."""
from __future__ import annotations

import secrets

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from service.api.deps import RepositoryDep, SettingsDep
from service.api.limits import label_total, steered_n
from service.api.responses import content, error_responses
from service.api.schemas import DatasetRequest
from service.errors import LimitError
from service.sampling import datasets, resolve_labels, steering, translation

router = APIRouter(prefix="/v1", tags=["datasets"], responses=error_responses(404, 422))


@router.post("/datasets", operation_id="createDataset", response_class=StreamingResponse,
             responses={200: {"content": content("application/octet-stream", "application/zip"),
                             "description": "npz: x, y, label_names, scores; zip: a folder of PNGs per label"}})
def post_dataset(request: DatasetRequest, repository: RepositoryDep, settings: SettingsDep) -> StreamingResponse:
    """Thousands of labelled samples in one streamed archive; memory stays flat however many."""
    # 1. every limit on the request alone, before the model is touched or a label list is built.
    steered = steered_n(request, settings.max_n, "max_n")  # explicit latents or a walk: n is theirs
    n = steered or request.n or label_total(request.labels, settings.max_dataset_n, "max_dataset_n")
    if not n:
        raise LimitError("n: required, at least 1 (or labels whose counts add up to n)")
    if n > settings.max_dataset_n:
        raise LimitError(f"n: at most {settings.max_dataset_n} samples per dataset (max_dataset_n), got {n}")
    label_total(request.labels, settings.max_dataset_n, "max_dataset_n")  # labels beside an explicit n
    if request.mode != "plain" and request.oversample > settings.max_oversample:
        raise LimitError(f"oversample: at most {settings.max_oversample} (max_oversample), got {request.oversample}")
    # 2. what depends on the model.
    model = repository.get(request.model, request.version)
    translation.check_samples(model)
    labels = resolve_labels(model, request.labels, n if request.n or steered else None)
    if request.walk is not None and request.labels is None:
        labels = steering.walk_labels(model, n)
    datasets.check(model, request.format)
    steer = request.steering(model)
    seed = None if steered else request.seed if request.seed is not None else secrets.randbelow(2**31)
    body = datasets.stream(model, n, seed, request.mode, request.oversample, labels, request.format, steer)
    source = (f"seed{seed}" if request.latents is None and request.walk is None else
              "latents" if request.walk is None else f"walk{request.walk.from_}-{request.walk.to}")
    filename = f"{model.name}-v{model.version}-{source}-{n}.{request.format}"
    headers = {"Content-Disposition": f'attachment; filename="{filename}"', "X-Model": model.name,
               "X-Model-Version": str(model.version)}
    if steer.seed(seed) is not None:  # a walk reports its start, explicit latents no seed
        headers["X-Seed"] = str(steer.seed(seed))
    return StreamingResponse(body, media_type="application/zip" if request.format == "zip"
                             else "application/octet-stream", headers=headers)
