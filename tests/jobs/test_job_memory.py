"""A job that runs past its memory fails alone: the worker runs each job in a child process capped at
max_job_memory, records the overrun as the job's error and takes the next job. The API's estimate is not in the way
here: the API keeps the default limit, the worker a low one, as a job the estimate let through would meet."""
from __future__ import annotations

from pathlib import Path

import pytest

from ganserve.launcher import start_redis
from tests.utils import (
    Server,
    free_port,
    start_worker,
    stop,
    store_env,
    wait_job,
    wait_until,
)

pytestmark = pytest.mark.system
WORKER_LIMIT_MB = 640  # holds a small quadratic job (about 400 MB), not the networks below
OVERRUNS = {"family": "mnist-mlp", "steps": 50, "model": "too-big",
            "params": {"g_hidden": 1536, "d_hidden": 1024, "batch_size": 512, "codes": 0, "d_refine": 0}}
FITS = {"family": "quadratic", "steps": 50, "params": {"g_hidden": 8}, "model": "fits"}


@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny_repository):
    """A Redis of its own, an API with the default limits and one worker with a low one."""
    root = tmp_path_factory.mktemp("jobmem")
    redis_url = f"redis://127.0.0.1:{free_port()}/0"
    redis = start_redis(redis_url, root / "redis")
    env = {"GANSERVE_REPOSITORY": f"{root / 'models'}:{tiny_repository}", "GANSERVE_DATA": str(root),
           "GANSERVE_REDIS_URL": redis_url, "GANSERVE_RELOAD_SECONDS": "0.2", "GANSERVE_API_KEYS": "",
           "GANSERVE_TRAIN_THREADS": "1", **store_env(root)}
    server = Server(env, root / "server.log")
    worker = start_worker({**env, "GANSERVE_MAX_JOB_MEMORY": str(WORKER_LIMIT_MB * 2**20)}, root / "worker.log")
    with server.client() as api:
        yield api, worker
    stop(worker)
    server.stop()
    stop(redis)


def test_a_job_past_its_memory_fails_alone_and_the_worker_runs_the_next(world):
    api, worker = world
    big = api.post("/v1/jobs", json=OVERRUNS)
    assert big.status_code == 202, big.text  # the API's estimate is under its default limit
    small = api.post("/v1/jobs", json=FITS).json()  # queued behind it, for the same worker
    failed = wait_job(api, big.json()["id"], ("succeeded", "failed", "cancelled"), timeout=240)
    assert failed["state"] == "failed"
    assert failed["error"] == f"the job ran past its memory limit of {WORKER_LIMIT_MB} MB (max_job_memory)"
    done = wait_job(api, small["id"], ("succeeded", "failed", "cancelled"), timeout=240)
    assert done["state"] == "succeeded", done["error"]
    assert done["worker"] == failed["worker"] and worker.poll() is None, "the same worker process, still running"
    wait_until(lambda: api.get("/v1/models/fits").status_code == 200, 10, "the small job's model listed")
    assert api.get("/v1/models/too-big").status_code == 404, "nothing of the failed job is published"
    log = Path(worker.log_path).read_text()
    assert f"ganserve.train[{small['id']}] succeeded" in log
