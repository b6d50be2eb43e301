"""Strict JSON: one parser for every JSON body, bounded in depth, off the event loop when large, finite only.

NaN and Infinity are not JSON numbers, and a NaN slips past every `ge`/`le` bound (NaN < 0 and NaN > 1
are both false): it reached a job's parameters and a card once. So each JSON body is parsed here before
FastAPI sees it (pydantic-core's parser: fast, and it refuses nesting past its recursion limit with an
error instead of Python's RecursionError), a body carrying a non-finite number is a 422 naming the field,
and the parsed value is handed to FastAPI so it is not parsed again. A large body is parsed on a thread:
13 MB of explicit latents took 2 s, during which no other request would have been served. Large bodies are
parsed one at a time (`off_loop`): a parse holds the GIL from start to end, so eight at once kept the
event loop waiting for several of them in turn.
"""
from __future__ import annotations

import math
from typing import Any, Callable, TypeVar

import anyio.to_thread
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic_core import from_json
from starlette.requests import Request

INLINE_BYTES = 64 * 1024  # bodies up to this are parsed on the event loop (a thread hop costs more)
T = TypeVar("T")


async def off_loop(request: Request, parse: Callable[[bytes], T], body: bytes) -> T:
    """parse(body) on the event loop when small, else on a thread, one large body at a time per app."""
    if len(body) <= INLINE_BYTES:
        return parse(body)
    return await anyio.to_thread.run_sync(parse, body, limiter=request.app.state.large_bodies)


def non_finite_path(value: Any) -> tuple | None:
    """The path of the first non-finite number in parsed JSON, or None (iterative: no depth limit of its own)."""
    stack: list[tuple[tuple, Any]] = [((), value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return path
        if isinstance(item, dict):
            stack.extend(((*path, key), child) for key, child in reversed(item.items()))
        elif isinstance(item, list):
            stack.extend(((*path, i), child) for i, child in reversed(list(enumerate(item))))
    return None


def parse(body: bytes) -> tuple[Any, tuple | None]:
    """(the parsed body, the path of its first non-finite number); ValueError for malformed or too deep JSON."""
    parsed = from_json(body, allow_inf_nan=True)
    return parsed, non_finite_path(parsed)


class StrictJSONRoute(APIRoute):
    def get_route_handler(self):
        handler = super().get_route_handler()

        async def strict(request: Request):
            if request.headers.get("content-type", "").split(";")[0].strip().endswith("json"):
                body = await request.body()  # kept on the request: the handler reads it from there
                try:
                    parsed, path = await off_loop(request, parse, body)
                except ValueError as exc:
                    raise RequestValidationError([{"type": "json_invalid", "loc": ("body",), "input": None,
                                                   "msg": f"not valid JSON ({str(exc)[:120]})"}]) from None
                if path is not None:
                    raise RequestValidationError([{
                        "type": "finite_number", "loc": ("body", *path), "input": None,
                        "msg": "must be a finite number; NaN and Infinity are not JSON numbers"}])
                request._json = parsed  # Starlette's cache of request.json(): FastAPI does not parse it again
            return await handler(request)

        return strict
