"""Test helpers: real servers, workers and Redis on free ports, tiny models by the real exporter."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Callable, TypeVar

import httpx

ROOT = Path(__file__).resolve().parents[1]
TINY_MODELS = ROOT / "tests" / "assets" / "models"  # checked in: tests/make_tiny_models.py makes them
T = TypeVar("T")
# Set: the suite runs on PostgreSQL (CI's second run), each data folder with a fresh database of its own on that
# server (created here, dropped when the session ends). Unset: each data folder's own SQLite file, as `make run`.
SUITE_DATABASE = os.environ.get("GANSERVE_DATABASE_URL", "")
_databases: dict[Path, str] = {}


def database_url(data: Path) -> str:
    """The store URL for a data folder: "" (SQLite in the folder), or its own PostgreSQL database."""
    if not SUITE_DATABASE:
        return ""
    key = Path(data).resolve()
    if key not in _databases:
        _databases[key] = create_database(SUITE_DATABASE)
    return _databases[key]


def create_database(server_url: str, name: str | None = None) -> str:
    """A new empty database on the PostgreSQL server of `server_url`; its URL."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = name or f"ganserve_test_{uuid.uuid4().hex[:12]}"
    url = make_url(server_url).set(drivername="postgresql+psycopg")
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
    admin.dispose()


def drop_databases() -> None:
    """Every database database_url made (the session's end)."""
    for url in _databases.values():
        drop_database(url)
    _databases.clear()


def store_env(data: Path) -> dict[str, str]:
    """The environment naming a data folder's store, for a subprocess (server, worker, CLI)."""
    return {"GANSERVE_DATABASE_URL": database_url(data)}


def open_test_store(data: Path, repository: Path | None = None, url: str | None = None):
    """The store a server on `data` uses (its writable repository folder `data/models` unless named; the database
    `url` names, else the data folder's)."""
    from service.store import Store
    from service.store.engine import database_url as resolve

    store = Store(resolve(database_url(data) if url is None else url, data), repository or Path(data) / "models",
                  Path(data))
    store.ensure_schema()
    return store

# One tiny config per family: small nets, and the expensive extras (clusters, D refinement) off;
# tests/training/test_codes.py turns each of those on.
TINY = {
    "quadratic": {"latent_dim": 2, "g_hidden": 8, "d_hidden": 8},
    "curves": {"latent_dim": 8, "hidden": 8},
    "curves-cgan": {"latent_dim": 8, "hidden": 8},
    "mnist-mlp": {"latent_dim": 8, "g_hidden": 8, "d_hidden": 8, "batch_size": 8, "codes": 0, "d_refine": 0},
    "mnist-dcgan": {"latent_dim": 8, "g_channels": 8, "d_channels": 4, "batch_size": 8, "codes": 0, "d_refine": 0},
    "mnist-cgan": {"latent_dim": 8, "g_channels": 8, "d_channels": 4, "batch_size": 8, "d_refine": 0},
    "rgb-dcgan": {"latent_dim": 8, "image_size": 8, "g_channels": 8, "d_channels": 4, "batch_size": 8},
    "image-cgan": {"latent_dim": 8, "image_size": 16, "g_channels": 8, "d_channels": 4, "batch_size": 8},
    "digits-cyclegan": {"g_channels": 4, "blocks": 1, "d_channels": 4, "batch_size": 4},
}
TINY_SERVED = ("quadratic", "curves-cgan", "mnist-dcgan", "mnist-cgan", "digits-cyclegan", "image-cgan")  # points,
# curves per label, grey images (per label), translation, RGB 16×16 images per label (made last: the cyclegan's
# tiny weights depend on what ran before it in the process)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check: Callable[[], T], timeout: float = 15.0, what: str = "condition", every: float = 0.1) -> T:
    """Call check until it returns something truthy, and return that; AssertionError after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout:g} s (last: {value!r})")
        time.sleep(every)


def answers(url: str, process: subprocess.Popen | None = None) -> bool:
    """Whether url answers 200 (RuntimeError if the process serving it has exited)."""
    if process is not None and process.poll() is not None:
        raise RuntimeError(f"process exited with {process.returncode} before {url} answered")
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def stop(process: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM, then SIGKILL if it has not ended within the timeout."""
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def export_tiny(family: str, repository: Path, model: str | None = None, steps: int = 1, evaluate: bool = False,
                others: tuple[Path, ...] = (), promote: bool | None = True, **params) -> Path:
    """A tiny model of a family after a step or two, published by the real exporter (evaluation off unless
    asked; made the default, as a version that passed its gate would be, unless promote says otherwise)."""
    from training.config import TrainConfig
    from training.export import export
    from training.trainer import train

    # Two threads, as the checked-in tiny models were made: a step's float sums depend on the thread count
    # (digits-cyclegan's generator moves by up to 0.9 after one Adam step on one thread instead of two).
    config = TrainConfig(family=family, steps=steps, model=model, params={**TINY[family], **params}, progress_every=1,
                         threads=2)
    return export(train(config), repository, others=others, evaluate=evaluate, promote=promote)


def kept_uploads(data: Path) -> list[str]:
    """The uploads a server on `data` keeps: the ids its store lists, and any data folders it left on disk."""
    store = open_test_store(data)
    try:
        listed = [meta["id"] for meta in store.uploads.page(limit=500)[0]]
    finally:
        store.close()
    folder = Path(data) / "uploads"
    on_disk = [p.name for p in folder.iterdir() if not p.name.startswith(".")] if folder.is_dir() else []
    return sorted(set(listed) | set(on_disk))


def upload_data(data: Path, upload_id: str) -> dict:
    """The arrays a server on `data` keeps for an upload (from its store, wherever that keeps them)."""
    import numpy as np

    store = open_test_store(data)
    try:
        with np.load(store.uploads.path(upload_id)) as arrays:
            return dict(arrays)
    finally:
        store.close()


def publish_tiny(family: str, repository: Path, model: str | None = None, others: tuple[Path, ...] = (),
                 promote: bool = True, store=None, broken: str | None = None, owner: str | None = None) -> Path:
    """A checked-in tiny model of a family published as a new version, as the exporter publishes (numbered across
    every folder, made the default if `promote`; not evaluated): what export_tiny does, without torch. With a
    `store` (a server's), through it, into its writable folder `repository`. `broken`: that file's bytes spoiled."""
    from service.repository import Card, publish, stage
    from service.repository.store import publish_to_store, write_alias

    name = model or family
    tmp = stage(name, Path(repository))
    shutil.copytree(TINY_MODELS / family / "1", tmp, dirs_exist_ok=True)
    if broken:
        (tmp / broken).write_bytes(b"broken")
    card = Card.load(tmp)
    card.name, card.promoted, card.gate, card.metrics = name, promote, None, {}
    if store is not None:
        return publish_to_store(store.versions, tmp, card, list(map(Path, others)), owner)
    path = publish(tmp, card, [Path(repository), *map(Path, others)])
    if promote:
        write_alias(name, "default", card.version, Path(repository))
    return path


class Server:
    """A real uvicorn process serving the app on a free port."""

    def __init__(self, env: dict[str, str], log: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data = Path(env["GANSERVE_DATA"])
        self.writable = Path(env["GANSERVE_REPOSITORY"].split(":")[0])  # where jobs publish
        self.log = open(log, "w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ganserve.cli", "serve", "--port", str(self.port), "--quiet"],
            cwd=ROOT, env={**os.environ, **env}, stdout=self.log, stderr=subprocess.STDOUT)
        wait_until(lambda: answers(self.url + "/readyz", self.process), 30, f"{self.url}/readyz answering")

    def client(self, **options) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **options)

    def stop(self) -> None:
        stop(self.process)
        self.log.close()


UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"  # no broker: job routes answer 503, sampling never needs one


def app_client(repository: Path, data: Path, **settings):
    """An in-process app (its lifespan runs when the client is entered) on `repository` behind a writable folder
    data/models, with Settings fields; no Redis unless redis_url names one."""
    from fastapi.testclient import TestClient

    from service.app import create_app
    from service.settings import Settings

    fields = {"repository": f"{data / 'models'}:{repository}", "data": data, "reload_seconds": 0.2, "api_keys": "",
              "redis_url": UNREACHABLE_REDIS, "database_url": database_url(data), **settings}
    return TestClient(create_app(Settings(**fields)), raise_server_exceptions=False)


def serve(repository: Path, data: Path, **settings) -> Server:
    """A real server on `repository` (behind a writable folder data/models), with GANSERVE_ settings."""
    env = {"GANSERVE_REPOSITORY": f"{data / 'models'}:{repository}", "GANSERVE_DATA": str(data),
           "GANSERVE_RELOAD_SECONDS": "0.2", "GANSERVE_API_KEYS": "", **store_env(data),
           **{f"GANSERVE_{k.upper()}": str(v) for k, v in settings.items()}}
    data.mkdir(parents=True, exist_ok=True)
    return Server(env, data / "server.log")


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen:
    """A real Celery worker process (`ganserve worker`) with the given GANSERVE_ environment."""
    out = open(log, "a")
    process = subprocess.Popen([sys.executable, "-m", "ganserve.cli", "worker"], cwd=ROOT,
                               env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT)
    process.log_path = log
    out.close()  # the child holds its own copy
    return process


def wait_job(api: httpx.Client, job_id: str, states: tuple[str, ...], timeout: float = 120) -> dict:
    """A job's record once it reaches one of the states."""
    return wait_until(lambda: (job := api.get(f"/v1/jobs/{job_id}").json())["state"] in states and job,
                      timeout, f"job {job_id} in {states}", every=0.2)


class DroppingProxy:
    """A TCP proxy to `upstream` (host, port) that cuts its first `drops` long answers after `after` bytes,
    as a network that drops a connection would: the client sees a stream end in the middle."""

    def __init__(self, upstream: tuple[str, int], after: int, drops: int = 1):
        import threading

        self.upstream, self.after, self.drops, self.dropped = upstream, after, drops, 0
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen()
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import threading

        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            threading.Thread(target=self._pump, args=(client, server, None), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, self.after), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, limit: int | None) -> None:
        sent = 0
        try:
            while data := source.recv(65536):
                if limit is not None and sent + len(data) > limit:
                    with self.lock:
                        cut = self.dropped < self.drops
                        self.dropped += cut
                    if cut:
                        sink.sendall(data[:limit - sent])
                        break
                    limit = None
                sink.sendall(data)
                sent += len(data)
        except OSError:
            pass
        for s in (source, sink):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self) -> None:
        self.listener.close()
