"""What is checked before a request's body is read: the API key of keyed routes, the body's size, its pace.

An ASGI middleware, so that a client without a key, or with a body over the limit, costs a header
and nothing more: 401/403 before a byte of the body is read, 413 by Content-Length or as soon as the
counted bytes pass the limit, 408 when the whole body has not arrived within `body_seconds` (a client
trickling a byte a second holds a connection no longer than that).
"""
from __future__ import annotations

import asyncio
import json

from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from service.api.deps import key_refusal, require_key
from service.settings import get_settings

UPLOAD_TYPES = ("multipart/form-data", "application/octet-stream", "application/zip")


class Guard:
    def __init__(self, app: ASGIApp, routes: list) -> None:
        self.app = app
        # Keyed routes are those that depend on require_key: the one declaration both checks read.
        self.keyed = [r for r in routes if isinstance(r, APIRoute)
                      and any(d.call is require_key for d in r.dependant.dependencies)]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        settings = get_settings()
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if any(route.matches(scope)[0] == Match.FULL for route in self.keyed):
            refusal = key_refusal(headers.get("authorization"), settings.keys)
            if refusal is not None:
                return await _answer(send, refusal)
        kind = headers.get("content-type", "").split(";")[0].strip().lower()
        limit = settings.max_upload_bytes if kind in UPLOAD_TYPES else settings.max_body_bytes
        declared = headers.get("content-length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > limit:
            return await _answer(send, _too_large(limit))
        deadline = asyncio.get_running_loop().time() + settings.body_seconds
        seen, complete = 0, False

        async def limited() -> dict:
            nonlocal seen, complete
            if complete:  # after the body only a disconnect can come, however long a stream runs
                return await receive()
            remaining = deadline - asyncio.get_running_loop().time()
            try:
                message = await asyncio.wait_for(receive(), max(remaining, 0.001))
            except asyncio.TimeoutError:
                raise HTTPException(408, f"body: not received within {settings.body_seconds:g} s "
                                         "(body_seconds)") from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _too_large(limit)
                complete = not message.get("more_body", False)
            return message

        await self.app(scope, limited, send)


def _too_large(limit: int) -> HTTPException:
    return HTTPException(413, f"body: over the limit of {limit} bytes (max_body_bytes for JSON, "
                              "max_upload_bytes for uploads)")


async def _answer(send: Send, exc: HTTPException) -> None:
    """The service's JSON error body, sent without reading the request's body; the connection closes."""
    body = json.dumps({"error": {"status": exc.status_code, "message": exc.detail}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"connection", b"close")]
    headers += [(k.lower().encode(), v.encode()) for k, v in (exc.headers or {}).items()]
    await send({"type": "http.response.start", "status": exc.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})
