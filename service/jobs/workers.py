"""Which devices the running workers have: each worker writes its own Redis key with a TTL, the API reads them.

A job asking for `cuda` is refused at submission (422, naming `device`) unless a live worker advertises a GPU,
rather than failing later on a worker that cannot run it. A worker that stops advertising (killed, or its Redis
gone) drops out within TTL_SECONDS. Both sides import this module; it imports neither.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import socket
import threading

log = logging.getLogger(__name__)
PREFIX = "ganserve:worker:"
TTL_SECONDS = 30
EVERY_SECONDS = 10.0  # how often a worker rewrites its key: well within the TTL


def advertise(client, worker: str, info: dict) -> None:
    """Write one worker's devices (and what else helps an operator: cores, threads) for TTL_SECONDS."""
    client.set(PREFIX + worker, json.dumps(info), ex=TTL_SECONDS)


def keep_advertising(client, worker: str, info: dict, stop: threading.Event) -> threading.Thread:
    """A daemon thread that advertises until `stop` is set, then withdraws (a Redis error is logged and retried next
    time; a worker killed outright drops out when its key expires)."""
    def loop() -> None:
        while True:
            try:
                advertise(client, worker, info)
            except Exception as exc:  # redis-py raises several types for a server that went away
                log.warning("could not advertise this worker's devices: %s", exc)
            if stop.wait(EVERY_SECONDS):
                with contextlib.suppress(Exception):  # Redis gone already: the key expires on its own
                    client.delete(PREFIX + worker)
                return

    thread = threading.Thread(target=loop, name="advertise-devices", daemon=True)
    thread.start()
    return thread


def host_id() -> str:
    """This machine as advertisements name it: an opaque id (no host name leaves it), the same for its workers."""
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:12]


def on_host(client, host: str) -> int:
    """How many live workers share the machine `host` (at least this one): each takes its share of the cores."""
    return max(1, sum(info.get("host") == host for info in advertised(client).values()))


def advertised(client) -> dict[str, dict]:
    """worker -> what it advertised, for every live worker."""
    out = {}
    for key in client.scan_iter(match=PREFIX + "*", count=100):
        raw = client.get(key)
        if raw is not None:
            name = key.decode() if isinstance(key, bytes) else key
            out[name[len(PREFIX):]] = json.loads(raw)
    return out


def missing_device(client, device: str) -> str | None:
    """Why no live worker can train on `device` (a message naming the field), or None when one can."""
    if device in ("auto", "cpu"):
        return None  # every worker has a CPU, and a job may wait in the queue for one to start
    live = advertised(client)
    if any(device in info.get("devices", []) for info in live.values()):
        return None
    have = sorted({d for info in live.values() for d in info.get("devices", [])})
    return (f"device: no running worker has {device!r} (a GPU torch can use); the workers have "
            f"{', '.join(have) if have else 'none running'}. Ask for 'auto' or 'cpu', or start a worker on a GPU machine")
