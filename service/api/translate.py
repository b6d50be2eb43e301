"""Translation: images in (JSON base64 PNGs, or multipart files), the model's generator, images out with scores.

The steps of a sample request: read the body under its limit, check the model and direction before
decoding anything, decode under the image budget (off the event loop), run the plan through the
batcher, encode.
"""
from __future__ import annotations

import base64
import binascii
import io
import json
from typing import BinaryIO

import anyio.to_thread
from starlette.concurrency import run_in_threadpool
from fastapi import APIRouter, Request, Response
from starlette.datastructures import UploadFile

from service.api.deps import BatcherDep, RepositoryDep, SettingsDep
from service.api.docs import late
from service.api.responses import Translated, error_responses, formats_content, late_formats
from service.api.schemas import TranslateOptions, TranslateRequest
from service.api.strict import StrictJSONRoute
from service import formats
from service.io import Budget
from service.sampling import images, plans, translation
from service.sampling.images import InputError
from service.settings import Settings
from service.uploads import UploadTooLarge

router = APIRouter(prefix="/v1/models", tags=["translate"], responses=error_responses(404, 413, 422, 503),
                   route_class=StrictJSONRoute)

FILES = {"type": "array", "items": {"type": "string", "format": "binary"},
         "description": "one or more files: a PNG (or JPEG, BMP, WebP), an .npy or .npz of grey images "
                        "((n, h, w), (n, 1, h, w) or (n, h, w, 1); uint8 0..255, or floats in [0, 1] or [-1, 1]), "
                        "or a zip of images"}
late_formats("translateImages", "translate")


@late("translateImages")
def request_body(operation: dict) -> None:
    """The body as JSON or multipart, its fields (format included) read from the request models when the schema
    is made."""
    multipart = {"type": "object", "required": ["file", "direction"],
                 "properties": {"file": FILES, **TranslateOptions.model_json_schema()["properties"]}}
    operation["requestBody"] = {"required": True, "content": {
        "application/json": {"schema": TranslateRequest.model_json_schema()},
        "multipart/form-data": {"schema": multipart}}}


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refused (413) as soon as it passes the limit."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise UploadTooLarge(f"body: {declared} bytes is over the limit of {limit} (max_translate_bytes)")
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > limit:
            raise UploadTooLarge(f"body: over the limit of {limit} bytes (max_translate_bytes)")
    return bytes(raw)


async def parse(request: Request, raw: bytes) -> tuple[TranslateOptions, list[tuple[str, BinaryIO]]]:
    """The options and the files (name, a seekable stream) of a JSON or multipart request."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        async def receive():
            return {"type": "http.request", "body": raw, "more_body": False}

        form = await Request(request.scope, receive).form(max_files=64, max_fields=16)
        # Read from where the parser spooled them (to disk past 1 MB), never copied whole into memory.
        files = [(f.filename or f"file {i}", f.file) for i, f in enumerate(form.getlist("file"))
                 if isinstance(f, UploadFile)]
        fields = {k: v for k, v in form.multi_items() if k != "file"}
        if not files:
            raise InputError("file: no file given (multipart field `file`: a PNG, .npy, .npz or zip of images)")
        return TranslateOptions.model_validate(fields), files
    if kind in ("application/json", ""):
        try:
            body = json.loads(raw)
        except ValueError:
            raise InputError("body: not valid JSON") from None
        parsed = TranslateRequest.model_validate(body)
        files = []
        for i, text in enumerate(parsed.images):
            try:
                files.append((f"images.{i}", io.BytesIO(base64.b64decode(text, validate=True))))
            except (binascii.Error, ValueError):
                raise InputError(f"images.{i}: not base64") from None
        return TranslateOptions.model_validate(parsed.model_dump(exclude={"images"})), files
    raise InputError(f"body: content type {kind!r}; send application/json or multipart/form-data")


def decode(files: list[tuple[str, BinaryIO]], shape: list[int], settings: Settings):
    """Every file's images, decoded under one budget and fitted to the source domain's shape one at a time."""
    budget = Budget.for_translate(settings)
    inputs = images.conform((img for name, stream in files for img in images.decode(stream, name, budget)), shape)
    if not len(inputs):
        raise InputError("file: holds no images")
    return inputs


@router.post("/{name}/translate", operation_id="translateImages", response_class=Response, responses={200: {
                 "model": Translated, "description": "the translated images in the requested format",
                 "content": formats_content("translate")}})
async def translate(name: str, request: Request, repository: RepositoryDep, settings: SettingsDep,
                    batcher: BatcherDep) -> Response:
    """Translate images from one domain of a translation model to the other; each output carries the target
    domain's discriminator score, and format=png shows each input beside its output."""
    options, files = await parse(request, await read_body(request, settings.max_translate_bytes))
    model = repository.loaded(name, options.version) or await run_in_threadpool(repository.get, name, options.version)
    direction, source, _ = translation.direction(model, options.direction)  # refused before any decoding
    encoder = formats.get(options.format, "translate")
    inputs = await anyio.to_thread.run_sync(decode, files, source.shape, settings, limiter=batcher.limiter)
    # Not merged with other requests' rows: the discriminators' scores are not row-independent in onnxruntime
    # (measured: a row's score changes with the batch around it), and the same request must give the same bytes.
    with batcher.admit(model.name):
        result = await anyio.to_thread.run_sync(plans.run, translation.translate(model, inputs, direction),
                                                plans.direct, limiter=batcher.limiter)
    body = await anyio.to_thread.run_sync(encoder.translation, result, limiter=batcher.limiter)
    headers = {"X-Model": result.model, "X-Model-Version": str(result.version), "X-Direction": result.direction}
    return Response(body, media_type=encoder.media_type, headers=headers)
