"""What is checked before a request's body is read: the API key of keyed routes, the body's size, its pace.

An ASGI middleware, so that a client without a key, over its rate, or with a body over the limit,
costs a header and nothing more: 429 with Retry-After past `rate_per_second` (a token bucket per API
key, or per client address without one; health and metrics are never limited), 401/403 before a byte
of the body is read, 413 by Content-Length or as soon as the counted bytes pass the limit (the route's:
BODY_LIMITS, else max_body_bytes), 408 when
the whole body has not arrived within `body_seconds` (a client trickling a byte a second holds a
connection no longer than that).
"""
from __future__ import annotations

import asyncio
import collections
import functools
import json
import math
import time

from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from service.api.deps import key_refusal, require_key
from service.keys import Keys
from service.settings import Settings

# The routes whose body may be larger than max_body_bytes, by operation id, and the setting that bounds it.
# Chosen by route, never by the content type a client claims: an open JSON route sent as octet-stream gets
# max_body_bytes like any other.
BODY_LIMITS = {"uploadData": "max_upload_bytes", "importModel": "max_upload_bytes",
               "translateImages": "max_translate_bytes"}
UNLIMITED = ("/healthz", "/readyz", "/metrics")
CLOSE = {"Connection": "close"}  # the rest of a refused body is never read: the connection cannot be reused
CLIENTS = 10_000  # buckets kept; the least recently seen client is forgotten first


class Buckets:
    """Token buckets per client: `rate` requests a second on average, bursts of up to `burst`."""

    def __init__(self) -> None:
        self.buckets: collections.OrderedDict[str, tuple[float, float]] = collections.OrderedDict()

    def wait(self, client: str, rate: float, burst: int) -> float:
        """0 if the request may go now (a token is taken), else the seconds until one will be there."""
        now = time.monotonic()
        tokens, last = self.buckets.pop(client, (float(burst), now))
        tokens = min(float(burst), tokens + (now - last) * rate)
        wait = 0.0 if tokens >= 1 else (1 - tokens) / rate
        self.buckets[client] = (tokens - 1 if tokens >= 1 else tokens, now)
        if len(self.buckets) > CLIENTS:
            self.buckets.popitem(last=False)
        return wait


class Guard:
    def __init__(self, app: ASGIApp, routes: list, settings: Settings, keys: Keys) -> None:
        self.app, self.settings, self.keys = app, settings, keys
        self.buckets = Buckets()
        # Keyed routes are those that depend on require_key: the one declaration both checks read.
        self.keyed = [r for r in routes if isinstance(r, APIRoute)
                      and any(d.call is require_key for d in r.dependant.dependencies)]
        # Matching every keyed route cost ~5 % of an n=1 sample request; the answer depends only on these two.
        self._keyed = functools.lru_cache(maxsize=4096)(self._matches_keyed)
        self.large = [(r, BODY_LIMITS[r.operation_id]) for r in routes
                      if isinstance(r, APIRoute) and r.operation_id in BODY_LIMITS]
        self._body_limit = functools.lru_cache(maxsize=4096)(self._body_limit_of)

    def _matches_keyed(self, method: str, path: str) -> bool:
        scope = {"type": "http", "method": method, "path": path, "root_path": ""}
        return any(route.matches(scope)[0] == Match.FULL for route in self.keyed)

    def _body_limit_of(self, method: str, path: str) -> str:
        """The setting that bounds a request's body: the upload routes' own, else max_body_bytes."""
        scope = {"type": "http", "method": method, "path": path, "root_path": ""}
        return next((name for route, name in self.large if route.matches(scope)[0] == Match.FULL), "max_body_bytes")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        settings = self.settings
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        caller = self.keys.caller(headers.get("authorization"), (scope.get("client") or ("?",))[0])
        scope.setdefault("state", {})["caller"] = caller  # request.state.caller: who, for every route
        if settings.rate_per_second > 0 and scope["path"] not in UNLIMITED:
            # A verified key's bucket, else the address's: a made-up key per request buys no new bucket.
            wait = self.buckets.wait(caller.bucket, settings.rate_per_second, settings.rate_burst)
            if wait:
                return await _answer(send, HTTPException(
                    429, f"rate: over {settings.rate_per_second:g} requests a second (rate_per_second, bursts of "
                         f"{settings.rate_burst}); retry after the Retry-After seconds",
                    headers={"Retry-After": str(math.ceil(wait))}))
        if self._keyed(scope["method"], scope["path"]):
            refusal = key_refusal(headers.get("authorization"), caller, self.keys)
            if refusal is not None:
                return await _answer(send, refusal)
        name = self._body_limit(scope["method"], scope["path"])
        limit = getattr(settings, name)
        declared = headers.get("content-length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > limit:
            return await _answer(send, _too_large(limit, name))
        deadline = asyncio.get_running_loop().time() + settings.body_seconds
        seen, complete = 0, False

        async def limited() -> dict:
            nonlocal seen, complete
            if complete:  # after the body only a disconnect can come, however long a stream runs
                return await receive()
            try:  # timeout_at, not wait_for: no task is created per message
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise HTTPException(408, f"body: not received within {settings.body_seconds:g} s (body_seconds)",
                                    headers=CLOSE) from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _too_large(limit, name)
                complete = not message.get("more_body", False)
            return message

        await self.app(scope, limited, send)


def _too_large(limit: int, name: str) -> HTTPException:
    return HTTPException(413, f"body: over the limit of {limit} bytes ({name})", headers=CLOSE)


async def _answer(send: Send, exc: HTTPException) -> None:
    """The service's JSON error body, sent without reading the request's body; the connection closes."""
    body = json.dumps({"error": {"status": exc.status_code, "message": exc.detail}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"connection", b"close")]
    headers += [(k.lower().encode(), v.encode()) for k, v in (exc.headers or {}).items() if k.lower() != "connection"]
    await send({"type": "http.response.start", "status": exc.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})
