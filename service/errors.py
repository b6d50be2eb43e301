"""One place that maps ordinary exceptions to HTTP status codes and JSON bodies."""
from __future__ import annotations

import logging
import uuid

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException

from service.jobs.submit import BrokerUnavailable, JobError, QueueFull
from service.formats.pictures import EncodingError
from service.limits import LimitError
from service.repository import UnknownModel, WrongKind
from service.repository.store import Conflict
from service.sampling.batching import Overloaded
from service.sampling.plans import Cancelled
from service.sampling.samples import SamplingError
from service.repository.imports import ImportError_
from service.store import BadCursor, NotOwner, StoreUnavailable, UnknownJob
from service.uploads import OverQuota, UnknownUpload, UploadError, UploadTooLarge

log = logging.getLogger(__name__)

STATUS = {
    UnknownModel: 404,
    WrongKind: 422,
    Conflict: 409,
    UnknownJob: 404,
    SamplingError: 422,
    EncodingError: 422,
    LimitError: 422,
    JobError: 422,
    BrokerUnavailable: 503,
    Overloaded: 503,
    QueueFull: 429,
    Cancelled: 499,  # nginx's "client closed request": nobody reads it, the metrics count it
    UploadTooLarge: 413,
    OverQuota: 507,
    UploadError: 422,
    UnknownUpload: 404,
    BadCursor: 422,
    NotOwner: 403,
    ImportError_: 422,
    StoreUnavailable: 503,
}


def error(status: int, message: str, field: str | None = None, **extra) -> JSONResponse:
    body = {"error": {"status": status, "message": message, **({"field": field} if field else {}), **extra}}
    return JSONResponse(body, status_code=status)


def _field_of(message: str) -> str | None:
    head = message.split(":", 1)[0]
    return head if head and " " not in head else None


def status_of(exc: Exception) -> int:
    """The status an exception will be answered with (for metrics; the handlers below decide)."""
    if isinstance(exc, (RequestValidationError, ValidationError)):
        return 422
    if isinstance(exc, HTTPException):
        return exc.status_code
    return next((status for exc_type, status in STATUS.items() if isinstance(exc, exc_type)), 500)


def install(app: FastAPI) -> None:
    for exc_type, status in STATUS.items():
        app.add_exception_handler(exc_type, _known(status))

    @app.exception_handler(RequestValidationError)
    @app.exception_handler(ValidationError)
    async def invalid(request: Request, exc: RequestValidationError | ValidationError):
        problems = []
        for e in exc.errors():
            loc = [str(p) for p in e["loc"] if p not in ("body", "query", "path")]
            field = "body" if e["type"] == "json_invalid" else (".".join(loc) or "body")
            limit = {k: v for k, v in (e.get("ctx") or {}).items() if k in ("ge", "le", "gt", "lt", "expected")}
            problems.append({"field": field, "message": f"{field}: {e['msg']}", **limit})
        first = problems[0] if problems else {"field": "body", "message": "invalid request"}
        return error(422, first["message"], first["field"], problems=problems)

    @app.exception_handler(HTTPException)
    async def http(request: Request, exc: HTTPException):
        body = {"error": {"status": exc.status_code, "message": str(exc.detail)}}
        return JSONResponse(body, exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        request_id = uuid.uuid4().hex[:12]
        log.exception("unexpected error, request %s %s %s", request_id, request.method, request.url.path)
        return error(500, f"internal error; request id {request_id}")


def _known(status: int):
    async def handler(request: Request, exc: Exception):
        # The message as raised (str() of a LookupError would quote it, and stripping quotes ate real ones).
        message = exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)
        response = error(status, message, _field_of(message))
        if isinstance(exc, (Overloaded, QueueFull, StoreUnavailable)):
            response.headers["Retry-After"] = str(exc.retry_after)
        if isinstance(exc, StoreUnavailable):  # /readyz says so at once; the watcher says when it answers again
            request.app.state.store_up = False
        return response
    return handler
