"""The job protocol: what the API and the workers agree on. Both sides import it; it imports neither.

The task name and queue (the API sends the task by name, the worker registers it), the states of
a job record, and every family's hyper-parameters with their limits (catalog.json, written by
`ganserve catalog`, so the API validates a job without torch).
"""
from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import math
from importlib import resources
from typing import Any

TASK = "ganserve.train"
QUEUE = "ganserve"
STATES = ("queued", "running", "succeeded", "failed", "cancelled")
FINAL = ("succeeded", "failed", "cancelled")
HEARTBEAT_SECONDS = 2.0  # a running job's worker rewrites its heartbeat this often
HISTORY_LIMIT = 2000  # progress points kept per job for plotting
CATALOG = "catalog.json"  # beside this module


def worker_id(host: str, pid: int) -> str:
    """A worker as job records show it: an opaque id (its log says which host and process it is)."""
    return "worker-" + hashlib.sha256(f"{host}:{pid}".encode()).hexdigest()[:12]


def is_id(text: str) -> bool:
    """Job and upload ids are 32 lowercase hex digits (uuid4().hex): anything else is unknown, and no file
    is touched for it (an over-long or odd id must not reach the file system)."""
    return len(text) == 32 and all(c in "0123456789abcdef" for c in text)


def now() -> str:
    """A record's timestamps: UTC, ISO 8601, milliseconds."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


@functools.lru_cache
def catalog() -> dict:
    """Every family's kind, labels, default steps and hyper-parameters with their limits."""
    return json.loads(resources.files("service.jobs").joinpath(CATALOG).read_text())


def check_params(specs: dict[str, dict[str, Any]], params: dict[str, Any]) -> dict[str, Any]:
    """Values coerced to each param's type and checked against its limits; ValueError names the field."""
    checked = {}
    for name, value in params.items():
        spec = specs[name]
        kind = spec["type"]
        if kind == "int" and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError(f"params.{name}: must be an integer, got {value!r}")
        if kind == "float":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"params.{name}: must be a number, got {value!r}")
            value = float(value)
            if not math.isfinite(value):
                raise ValueError(f"params.{name}: must be a finite number, got {value!r}")
        if kind == "bool" and not isinstance(value, bool):
            raise ValueError(f"params.{name}: must be true or false, got {value!r}")
        if kind == "str" and not isinstance(value, str):
            raise ValueError(f"params.{name}: must be a string, got {value!r}")
        if "min" in spec and value < spec["min"]:
            raise ValueError(f"params.{name}: must be >= {spec['min']}, got {value}")
        if "max" in spec and value > spec["max"]:
            raise ValueError(f"params.{name}: must be <= {spec['max']}, got {value}")
        if "choices" in spec and value not in spec["choices"]:
            raise ValueError(f"params.{name}: must be one of {spec['choices']}, got {value!r}")
        checked[name] = value
    return checked
