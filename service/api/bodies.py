"""JSON bodies decoded by their request model with pydantic's own parser, off the event loop when large.

FastAPI parses a body into Python objects and then validates them, both on the event loop: 13 MB of
explicit latents held it for seconds, and /healthz with it. Here the bytes go straight to the model
(`model_validate_json`: one pass in Rust, bounded in depth; NaN and Infinity refused per field by the
models' `allow_inf_nan=False`), and a body past INLINE_BYTES is decoded on a thread (`off_loop`). The routes that take
one declare it with `body_of(Model)` so the OpenAPI schema still shows it.
"""
from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel
from starlette.requests import Request

from service.api.docs import component
from service.api.strict import off_loop

M = TypeVar("M", bound=BaseModel)


async def decode(request: Request, model: type[M]) -> M:
    """The request's body as `model` (pydantic's ValidationError names each invalid field)."""
    return await off_loop(request, model.model_validate_json, await request.body() or b"{}")


def body_of(model: type[BaseModel]) -> dict:
    """The openapi_extra of a route whose body `decode` reads as `model`."""
    component(model)
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}}}
