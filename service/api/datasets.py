"""Bulk labelled samples for augmentation pipelines, streamed as npz or a zip of class folders."""
from __future__ import annotations

import secrets

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from service.api.deps import RepositoryDep, SettingsDep
from service.api.limits import label_total
from service.api.schemas import DatasetRequest
from service.errors import LimitError
from service.sampling import datasets, modes, resolve_labels

router = APIRouter(prefix="/v1", tags=["datasets"])


@router.post("/datasets", response_class=StreamingResponse,
             responses={200: {"content": {"application/zip": {}, "application/octet-stream": {}}}})
def post_dataset(request: DatasetRequest, repository: RepositoryDep, settings: SettingsDep) -> StreamingResponse:
    """Thousands of labelled samples in one streamed archive; memory stays flat however many."""
    # 1. every limit on the request alone, before the model is touched or a label list is built.
    n = request.n or label_total(request.labels, settings.max_dataset_n, "max_dataset_n")
    if not n:
        raise LimitError("n: required, at least 1 (or labels whose counts add up to n)")
    if n > settings.max_dataset_n:
        raise LimitError(f"n: at most {settings.max_dataset_n} samples per dataset (max_dataset_n), got {n}")
    label_total(request.labels, settings.max_dataset_n, "max_dataset_n")  # labels beside an explicit n
    if request.mode != "plain" and (request.oversample or 0) > settings.max_oversample:
        raise LimitError(f"oversample: at most {settings.max_oversample} (max_oversample), got {request.oversample}")
    # 2. what depends on the model.
    model = repository.get(request.model, request.version)
    oversample = modes.oversample_for(model, request.mode, request.oversample)
    labels = resolve_labels(model, request.labels, n if request.n else None)
    datasets.check(model, request.format)
    seed = request.seed if request.seed is not None else secrets.randbelow(2**31)
    body = datasets.stream(model, n, seed, request.mode, oversample, labels, request.format)
    filename = f"{model.name}-v{model.version}-seed{seed}-{n}.{request.format}"
    headers = {"Content-Disposition": f'attachment; filename="{filename}"', "X-Model": model.name,
               "X-Model-Version": str(model.version), "X-Seed": str(seed),
               "X-Ranking": modes.ranking(model, request.mode, oversample)}
    return StreamingResponse(body, media_type="application/zip" if request.format == "zip"
                             else "application/octet-stream", headers=headers)
