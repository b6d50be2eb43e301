"""Bulk labelled samples for augmentation pipelines, streamed as npz, a zip of class folders or WebDataset tar."""
from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from service.api.deps import DatasetStreamsDep, RepositoryDep, SettingsDep
from service.api.request import prepare
from service.api.responses import error_responses, formats_content, late_formats
from service.api.schemas import DatasetRequest
from service.api.strict import StrictJSONRoute

router = APIRouter(prefix="/v1", tags=["datasets"], responses=error_responses(404, 422),
                   route_class=StrictJSONRoute)
late_formats("createDataset", "datasets")


@router.post("/datasets", operation_id="createDataset", response_class=StreamingResponse,
             responses={200: {"content": formats_content("datasets"),
                              "description": "the dataset in the requested format (see `format`)"}})
async def post_dataset(request: DatasetRequest, http: Request, repository: RepositoryDep, settings: SettingsDep,
                       streams: DatasetStreamsDep) -> StreamingResponse:
    """Thousands of labelled samples in one streamed archive; memory stays flat however many."""
    prepared = await prepare(request.spec(), "datasets", repository, settings)
    spec, model, n = prepared.spec, prepared.model, prepared.n
    source = (f"seed{prepared.seed}" if spec.latents is None and spec.walk is None else
              "latents" if spec.walk is None else f"walk{spec.walk.start}-{spec.walk.end}")
    window = f"{spec.start}-{spec.start + n - 1}" if spec.start else str(n)
    filename = f"{model.name}-v{model.version}-{source}-{window}.{spec.format}"
    headers = {**prepared.headers(), "Content-Disposition": f'attachment; filename="{filename}"',
               "X-Start": str(spec.start), "X-Count": str(n)}
    return StreamingResponse(streams.follow(prepared.stream(), http.is_disconnected),
                             media_type=prepared.encoder.media_type, headers=headers)
