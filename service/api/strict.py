"""Strict JSON: NaN and Infinity are not JSON numbers, so a body carrying them is a 422 naming the field.

Python's json module accepts them, and a NaN slips past every `ge`/`le` bound (NaN < 0 and NaN > 1 are
both false): it reached a job's parameters and a card once. The route class below checks each JSON
body before FastAPI parses it, so no field of any request can hold one.
"""
from __future__ import annotations

import json
from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.requests import Request


class _NonFinite(float):
    """Where the parser met NaN, Infinity or -Infinity."""


def non_finite_path(value: Any, path: tuple = ()) -> tuple | None:
    """The path of the first non-finite number in parsed JSON, or None."""
    if isinstance(value, _NonFinite):
        return path
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in children:
        found = non_finite_path(child, (*path, key))
        if found is not None:
            return found
    return None


class StrictJSONRoute(APIRoute):
    def get_route_handler(self):
        handler = super().get_route_handler()

        async def strict(request: Request):
            if request.headers.get("content-type", "").split(";")[0].strip().endswith("json"):
                body = await request.body()  # kept on the request: the handler reads it from there
                try:
                    parsed = json.loads(body, parse_constant=lambda word: _NonFinite(word))
                except ValueError:
                    parsed = None  # FastAPI reports malformed JSON itself
                path = non_finite_path(parsed)
                if path is not None:
                    raise RequestValidationError([{
                        "type": "finite_number", "loc": ("body", *path), "input": None,
                        "msg": "must be a finite number; NaN and Infinity are not JSON numbers"}])
                if parsed is not None:
                    request._json = parsed  # Starlette's cache of request.json(): FastAPI does not parse it again
            return await handler(request)

        return strict
