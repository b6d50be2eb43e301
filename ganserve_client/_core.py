"""What the sync and async clients share: typed results, errors, the retry rule, request bodies, parsing.

Nothing here does I/O, so the two clients differ only in how they wait.
"""
from __future__ import annotations

import email.utils
import io
import json
import random
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np

FINAL = ("succeeded", "failed", "cancelled")
RETRY_STATUSES = (429, 503)  # the server refused before doing anything: safe to send again


class ApiError(Exception):
    """An error answer of the service: its status, message and the field at fault."""

    def __init__(self, status: int, message: str, field: str | None = None, body: dict | None = None):
        super().__init__(f"{status}: {message}")
        self.status, self.message, self.field, self.body = status, message, field, body or {}


@dataclass
class Samples:
    """Samples as arrays: x uint8 images (n, h, w[, c]) or float32 numbers; y label indices; names; scores."""
    x: np.ndarray
    y: np.ndarray | None = None
    label_names: list[str] | None = None
    scores: np.ndarray | None = None
    model: str | None = None
    version: int | None = None
    seed: int | None = None
    start: int = 0
    acceptance_rate: float | None = None

    @property
    def labels(self) -> list[str] | None:
        """Each sample's label name."""
        if self.y is None or self.label_names is None:
            return None
        return [self.label_names[i] for i in self.y]

    def __len__(self) -> int:
        return len(self.x)


@dataclass
class Job:
    """A training job as the service reports it; `raw` holds every field."""
    id: str
    state: str
    model: str
    progress: dict = field(default_factory=dict)
    result: dict | None = None
    error: str | None = None
    raw: dict = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.state in FINAL

    @classmethod
    def of(cls, body: dict) -> "Job":
        return cls(body["id"], body["state"], body.get("model", ""), body.get("progress") or {}, body.get("result"),
                   body.get("error"), body)


@dataclass
class Model:
    """A served model: its versions, default, aliases and card (a dict, as card.json)."""
    name: str
    default: int | None
    versions: list[int]
    card: dict | None
    aliases: dict = field(default_factory=dict)
    raw: dict = field(default_factory=dict)

    @property
    def labels(self) -> list[str] | None:
        return (self.card or {}).get("labels")

    @classmethod
    def of(cls, body: dict) -> "Model":
        return cls(body["name"], body.get("default"), body.get("versions", []), body.get("card"),
                   body.get("aliases", {}), body)


@dataclass
class Event:
    """One server-sent event of a job: `progress` or `state`, with its data."""
    name: str
    data: dict


@dataclass
class Retry:
    """Retries of answers the server gives before doing any work (429, 503), and of failed connections for
    requests that are safe to repeat. Waits Retry-After when the server says, else exponential backoff."""
    attempts: int = 5
    backoff: float = 0.5  # seconds before the first retry; doubled each time, with jitter
    max_wait: float = 30.0

    def wait(self, attempt: int, response: httpx.Response | None) -> float:
        after = retry_after(response) if response is not None else None
        if after is not None:
            return min(after, self.max_wait)
        return min(self.backoff * 2 ** attempt * (0.5 + random.random() / 2), self.max_wait)


def retry_after(response: httpx.Response) -> float | None:
    """Retry-After in seconds (delta-seconds or an HTTP date), or None."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        moment = email.utils.parsedate_to_datetime(value)
        return max(0.0, moment.timestamp() - time.time()) if moment else None


def should_retry(response: httpx.Response | None, error: Exception | None, idempotent: bool) -> bool:
    if response is not None:
        return response.status_code in RETRY_STATUSES
    return idempotent and isinstance(error, (httpx.TransportError,))


def check(response: httpx.Response) -> httpx.Response:
    """The response, or ApiError with the service's message."""
    if response.is_success:
        return response
    try:
        body = response.json()
        detail = body.get("error", {})
        raise ApiError(response.status_code, detail.get("message", response.text), detail.get("field"), body)
    except ValueError:
        raise ApiError(response.status_code, response.text or response.reason_phrase) from None


def body(**fields) -> dict:
    """A JSON request body without the fields left at None."""
    return {k: v for k, v in fields.items() if v is not None}


def samples_of(response: httpx.Response) -> Samples:
    """An npz answer (/samples format npz, or /datasets) as Samples."""
    arrays = np.load(io.BytesIO(response.content), allow_pickle=False)
    headers = response.headers
    rate = float(arrays["acceptance_rate"]) if "acceptance_rate" in arrays.files else (
        float(headers["x-acceptance-rate"]) if "x-acceptance-rate" in headers else None)
    return Samples(
        x=arrays["x"], y=arrays["y"] if "y" in arrays.files else None,
        label_names=[str(s) for s in arrays["label_names"]] if "label_names" in arrays.files else None,
        scores=arrays["scores"] if "scores" in arrays.files else None,
        model=headers.get("x-model"), version=int(headers["x-model-version"]) if "x-model-version" in headers else None,
        seed=int(headers["x-seed"]) if "x-seed" in headers else None, start=int(headers.get("x-start", 0)),
        acceptance_rate=rate)


class EventParser:
    """Server-sent events from lines: `event:` and `data:` fields, an empty line ends an event."""

    def __init__(self):
        self.name, self.data = "message", []

    def feed(self, line: str) -> Event | None:
        if not line:
            if not self.data:
                return None
            event = Event(self.name, json.loads("\n".join(self.data)))
            self.name, self.data = "message", []
            return event
        if line.startswith(":"):  # a comment: keep-alive
            return None
        key, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if key == "event":
            self.name = value
        elif key == "data":
            self.data.append(value)
        return None


def upload_file(data: Any, filename: str | None) -> tuple[str, bytes]:
    """(filename, bytes) of an upload: a path, bytes, or arrays {x, y} written as an npz."""
    if isinstance(data, dict):
        buffer = io.BytesIO()
        np.savez(buffer, **data)
        return filename or "data.npz", buffer.getvalue()
    if isinstance(data, (bytes, bytearray)):
        return filename or "data.zip", bytes(data)
    with open(data, "rb") as f:
        return filename or str(data).replace("\\", "/").rsplit("/", 1)[-1], f.read()
