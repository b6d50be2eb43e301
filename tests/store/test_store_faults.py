"""A PostgreSQL of the test's own restarted under a running job, a worker SIGKILLed mid-job, Redis restarted
without its data: no job is lost and every record stays whole."""
from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

import pytest

from ganserve.launcher import start_redis
from tests.store.postgres import OwnPostgres
from tests.utils import (Server, create_database, free_port, open_test_store, start_worker, stop, wait_job, wait_until,
                         worker_process)

pytestmark = pytest.mark.system
STEADY = {"family": "quadratic", "steps": 3000, "params": {"g_hidden": 8}}  # long enough to restart things under
LONG = {"family": "quadratic", "steps": 200_000}


@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny_repository):
    root = tmp_path_factory.mktemp("store-faults")
    postgres = OwnPostgres()
    redis_url = f"redis://127.0.0.1:{free_port()}/0"
    redis = start_redis(redis_url, root / "redis")
    env = {"GANSERVE_REPOSITORY": f"{root / 'models'}:{tiny_repository}", "GANSERVE_DATA": str(root),
           "GANSERVE_DATABASE_URL": create_database(postgres.url), "GANSERVE_REDIS_URL": redis_url,
           "GANSERVE_RELOAD_SECONDS": "0.5", "GANSERVE_API_KEYS": "", "GANSERVE_TRAIN_THREADS": "1",
           "GANSERVE_JOB_LOST_SECONDS": "6", "GANSERVE_RECONCILE_SECONDS": "1"}
    state = {"root": root, "postgres": postgres, "redis": redis, "redis_url": redis_url, "env": env}
    state["server"] = Server(env, root / "server.log")
    state["worker"] = start_worker(env, root / "worker.log")
    yield state
    stop(state["worker"])
    state["server"].stop()
    stop(state["redis"])
    postgres.close()


def test_a_job_runs_through_a_database_restart_and_its_record_stays_whole(world):
    with world["server"].client() as api:
        job = api.post("/v1/jobs", json=STEADY).json()
        wait_until(lambda: api.get(f"/v1/jobs/{job['id']}").json()["progress"]["step"] > 0, 120, "progress")
        world["postgres"].restart()
        during = api.get(f"/v1/jobs/{job['id']}")  # the API's pooled connections were cut: replaced, or 503
        assert during.status_code in (200, 503), during.text
        time.sleep(1)
        world["postgres"].stop()
        down = api.get("/v1/jobs")
        assert down.status_code == 503 and "store" in down.json()["error"]["message"]
        assert api.post("/v1/models/quadratic/samples", json={"n": 2}).status_code == 200  # sampling goes on
        assert api.get("/readyz").json()["store"] == "down"
        time.sleep(3)  # the worker trains on, its writes waiting for the database
        world["postgres"].start()
        done = wait_job(api, job["id"], ("succeeded", "failed", "cancelled"), timeout=300)
        assert done["state"] == "succeeded", done["error"]
        steps = [p["step"] for p in done["history"]]
        assert steps == sorted(steps) and steps[-1] == STEADY["steps"] and done["progress"]["step"] == STEADY["steps"]
        assert api.get("/readyz").json()["store"] == "up"


def test_a_worker_killed_mid_job_leaves_a_failed_job_and_the_next_worker_runs_the_queue(world):
    with world["server"].client() as api:
        job = api.post("/v1/jobs", json=LONG).json()
        running = wait_job(api, job["id"], ("running",), timeout=60)
        os.kill(worker_process(running, [world["worker"]]).pid, signal.SIGKILL)
        world["worker"].wait(10)
        queued = api.post("/v1/jobs", json={**STEADY, "steps": 300}).json()
        done = wait_job(api, job["id"], ("failed", "succeeded", "cancelled"), timeout=60)
        assert done["state"] == "failed" and "worker lost" in done["error"]
        stop(world["redis"])  # Redis comes back without its data: the queued message is gone
        shutil.rmtree(world["root"] / "redis")
        world["redis"] = start_redis(world["redis_url"], world["root"] / "redis")
        world["worker"] = start_worker(world["env"], Path(world["root"]) / "worker-2.log")
        assert wait_job(api, queued["id"], ("succeeded", "failed"), timeout=180)["state"] == "succeeded"


def test_no_record_was_lost_or_corrupted(world):
    store = open_test_store(world["root"], url=world["env"]["GANSERVE_DATABASE_URL"])
    try:
        records = store.jobs.page(limit=100)[0]
    finally:
        store.close()
    assert len(records) == 3 and all(r["state"] in ("succeeded", "failed") for r in records)
    assert all(r["finished"] and r["config"]["family"] == "quadratic" for r in records)
