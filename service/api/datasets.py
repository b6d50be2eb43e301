"""Bulk labelled samples for augmentation pipelines, streamed as npz, a zip of class folders or WebDataset tar."""
from __future__ import annotations

import secrets

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from service.api.deps import DatasetStreamsDep, RepositoryDep, SettingsDep
from service.api.limits import label_total, steered_n
from service.api.responses import content, error_responses
from service.api.schemas import DatasetRequest
from service.api.strict import StrictJSONRoute
from service.errors import LimitError
from service.sampling import datasets, modes, resolve_labels, steering, translation

router = APIRouter(prefix="/v1", tags=["datasets"], responses=error_responses(404, 422),
                   route_class=StrictJSONRoute)


MEDIA_TYPES = {"npz": "application/octet-stream", "zip": "application/zip", "tar": "application/x-tar"}


@router.post("/datasets", operation_id="createDataset", response_class=StreamingResponse,
             responses={200: {"content": content(*sorted(set(MEDIA_TYPES.values()))),
                             "description": "npz: x, y, label_names, scores; zip: a folder of PNGs per label; "
                                            "tar: WebDataset (NNNNNN.png + NNNNNN.cls)"}})
async def post_dataset(request: DatasetRequest, http: Request, repository: RepositoryDep, settings: SettingsDep,
                       streams: DatasetStreamsDep) -> StreamingResponse:
    """Thousands of labelled samples in one streamed archive; memory stays flat however many."""
    # 1. every limit on the request alone, before the model is touched or a label list is built.
    steered = steered_n(request, settings.max_n, "max_n")  # explicit latents or a walk: n is theirs
    if steered and request.start:
        raise LimitError("start: explicit latents and walks start at their first row; leave start out")
    total = label_total(request.labels, settings.max_dataset_n, "max_dataset_n")
    n = steered or request.n or (None if total is None else total - request.start)
    if not n or n < 1:
        raise LimitError("n: required, at least 1 (or labels whose counts add up to more than start)")
    if n > settings.max_dataset_n:
        raise LimitError(f"n: at most {settings.max_dataset_n} samples per dataset (max_dataset_n), got {n}")
    label_total(request.labels, settings.max_dataset_n, "max_dataset_n")  # labels beside an explicit n
    # 2. what depends on the model: its oversample (a request may leave it to the card), and its budget.
    model = repository.get(request.model, request.version)
    translation.check_samples(model)
    oversample = modes.oversample_for(model, request.mode, request.oversample)
    if request.mode != "plain" and oversample > settings.max_oversample:
        raise LimitError(f"oversample: at most {settings.max_oversample} (max_oversample), got {oversample}")
    if request.mode != "plain" and n * oversample > settings.max_dataset_candidates:
        raise LimitError(f"oversample: n × oversample is at most {settings.max_dataset_candidates} candidates per "
                         f"dataset (max_dataset_candidates), got {n * oversample}")
    datasets.check(model, request.format, request.mode)
    if request.walk is not None and request.labels is None:
        labels = steering.walk_labels(model, n)
    elif steered and request.labels is not None:
        labels = resolve_labels(model, request.labels, n)
    else:
        labels = datasets.labels_of(model, request.labels, request.order, request.start, n)
    steer = request.steering(model, settings)
    seed = None if steered else request.seed if request.seed is not None else secrets.randbelow(2**31)
    body = datasets.stream(model, n, seed, request.mode, oversample, labels, request.format, steer, request.start)
    source = (f"seed{seed}" if request.latents is None and request.walk is None else
              "latents" if request.walk is None else f"walk{request.walk.from_}-{request.walk.to}")
    window = f"{request.start}-{request.start + n - 1}" if request.start else str(n)
    filename = f"{model.name}-v{model.version}-{source}-{window}.{request.format}"
    headers = {"Content-Disposition": f'attachment; filename="{filename}"', "X-Model": model.name,
               "X-Model-Version": str(model.version), "X-Start": str(request.start), "X-Count": str(n),
               "X-Ranking": modes.ranking(model, request.mode, oversample)}
    if steer.seed(seed) is not None:  # a walk reports its start, explicit latents no seed
        headers["X-Seed"] = str(steer.seed(seed))
    return StreamingResponse(streams.follow(body, http.is_disconnected), media_type=MEDIA_TYPES[request.format],
                             headers=headers)
