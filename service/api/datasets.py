"""Bulk labelled samples for augmentation pipelines, streamed as npz, a zip of class folders or WebDataset tar."""
from __future__ import annotations

import logging
from typing import Iterator

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from service.api.deps import DatasetStreamsDep, RepositoryDep, SettingsDep
from service.api.request import prepare
from service.api.responses import error_responses, formats_content, late_formats
from service.api.schemas import DatasetRequest
from service.api.bodies import body_of, decode
from service.sampling.datasets import Streams

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1", tags=["datasets"], responses=error_responses(404, 422))
late_formats("createDataset", "datasets")


@router.post("/datasets", operation_id="createDataset", response_class=StreamingResponse,
             responses={200: {"content": formats_content("datasets"),
                              "description": "the dataset in the requested format (see `format`)"}},
             openapi_extra=body_of(DatasetRequest))
async def post_dataset(http: Request, repository: RepositoryDep, settings: SettingsDep,
                       streams: DatasetStreamsDep) -> StreamingResponse:
    """Thousands of labelled samples in one streamed archive; memory stays flat however many."""
    request = await decode(http, DatasetRequest)
    prepared = await prepare(request.spec(), "datasets", repository, settings)
    spec, model, n = prepared.spec, prepared.model, prepared.n
    source = (f"seed{prepared.seed}" if spec.latents is None and spec.walk is None else
              "latents" if spec.walk is None else f"walk{spec.walk.start}-{spec.walk.end}")
    window = f"{spec.start}-{spec.start + n - 1}" if spec.start else str(n)
    filename = f"{model.name}-v{model.version}-{source}-{window}.{spec.format}"
    headers = {**prepared.headers(), "Content-Disposition": f'attachment; filename="{filename}"',
               "X-Start": str(spec.start), "X-Count": str(n)}
    streams.admit()
    return StreamedDataset(prepared.stream(), streams, settings.write_seconds, media_type=prepared.encoder.media_type,
                           headers=headers)


class StreamedDataset(StreamingResponse):
    """A dataset's response: it holds a stream slot until it ends however it ends (done, the client gone, or a
    client that stopped reading: each write must complete within `write_seconds`, else the connection is
    dropped and the slot freed)."""

    def __init__(self, chunks: Iterator[bytes], streams: Streams, write_seconds: float, **kwargs):
        super().__init__(streams.chunks(chunks), **kwargs)
        self.source, self.streams, self.write_seconds = chunks, streams, write_seconds

    async def __call__(self, scope, receive, send) -> None:
        async def timed(message) -> None:
            with anyio.fail_after(self.write_seconds):
                await send(message)

        try:
            await super().__call__(scope, receive, timed)
        except TimeoutError:  # the response is incomplete: the server closes the connection
            log.info("a dataset's client read nothing for %g s (write_seconds): dropped", self.write_seconds)
        finally:
            self.streams.release()
            await self.body_iterator.aclose()
            self.source.close()
