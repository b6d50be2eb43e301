"""Faults a job system must survive, with real processes: killed workers, Redis outages, API restarts,
two workers, time limits. Uses a Redis of its own (stopped and started here), never the machine's."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from ganserve.launcher import redis_answers, start_redis
from tests.utils import Server, free_port, open_test_store, start_worker, stop, store_env, wait_job, wait_until

pytestmark = pytest.mark.system
SHORT = {"family": "quadratic", "steps": 300, "params": {"g_hidden": 8}, "model": "quadratic"}
LONG = {"family": "quadratic", "steps": 200_000, "model": "quadratic"}


class World:
    """A Redis, an API server and workers sharing one data folder and repository."""

    def __init__(self, root: Path, tiny_repository: Path):
        self.root = root
        self.redis_url = f"redis://127.0.0.1:{free_port()}/0"
        self.redis = start_redis(self.redis_url, root / "redis")
        self.env = {"GANSERVE_REPOSITORY": f"{root / 'models'}:{tiny_repository}", "GANSERVE_DATA": str(root),
                    "GANSERVE_REDIS_URL": self.redis_url, "GANSERVE_RELOAD_SECONDS": "0.2",
                    "GANSERVE_API_KEYS": "", "GANSERVE_TRAIN_THREADS": "1",
                    "GANSERVE_JOB_LOST_SECONDS": "4", "GANSERVE_MAX_JOB_SECONDS": "8",
                    "GANSERVE_RECONCILE_SECONDS": "1", **store_env(root)}
        self.server = Server(self.env, root / "server.log")
        self.api = self.server.client()
        self.workers: list[subprocess.Popen] = []

    def start_worker(self) -> subprocess.Popen:
        process = start_worker(self.env, self.root / f"worker-{len(self.workers)}.log")
        self.workers.append(process)
        return process

    def stop_workers(self) -> None:
        for w in self.workers:
            stop(w)
        self.workers = []

    def restart_server(self) -> None:
        self.server.stop()
        self.server = Server(self.env, self.root / "server-2.log")
        self.api = self.server.client()

    def wait(self, job_id: str, states: tuple[str, ...], timeout: float = 90) -> dict:
        return wait_job(self.api, job_id, states, timeout)

    def versions(self) -> list[int]:
        return self.api.get("/v1/models/quadratic").json()["versions"]

    def close(self) -> None:
        self.stop_workers()
        self.server.stop()
        stop(self.redis)


@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny_repository):
    w = World(tmp_path_factory.mktemp("faults"), tiny_repository)
    yield w
    w.close()


def test_two_workers_run_each_job_exactly_once(world):
    world.start_worker(), world.start_worker()
    jobs = [world.api.post("/v1/jobs", json=SHORT).json()["id"] for _ in range(4)]
    done = [world.wait(j, ("succeeded", "failed")) for j in jobs]
    assert [d["state"] for d in done] == ["succeeded"] * 4
    versions = sorted(d["result"]["version"] for d in done)
    assert len(set(versions)) == 4, "each job publishes its own version"
    logs = "".join(Path(w.log_path).read_text() for w in world.workers)
    for job_id in jobs:
        assert logs.count(f"ganserve.train[{job_id}] succeeded") == 1
    assert "not running it" not in logs
    # later tests compare against what the service lists
    wait_until(lambda: max(world.versions()) == versions[-1], 10, "the newest version listed")


def test_job_over_its_time_limit_fails_and_says_so(world):
    versions = world.versions()
    job = world.api.post("/v1/jobs", json=LONG).json()
    done = world.wait(job["id"], ("succeeded", "failed", "cancelled"), timeout=60)
    assert done["state"] == "failed" and "time limit" in done["error"]
    assert world.versions() == versions


def test_killed_worker_leaves_a_failed_job_and_no_partial_model(world):
    versions = world.versions()
    job = world.api.post("/v1/jobs", json=LONG).json()
    world.wait(job["id"], ("running",), timeout=30)
    for worker in world.workers:  # records name a worker by an opaque id: every worker is killed
        os.kill(worker.pid, signal.SIGKILL)
    done = world.wait(job["id"], ("failed", "succeeded", "cancelled"), timeout=30)
    assert done["state"] == "failed" and "worker lost" in done["error"]
    assert world.versions() == versions
    world.stop_workers()


def test_queued_job_cancelled_never_starts(world):
    job = world.api.post("/v1/jobs", json=SHORT).json()  # no worker is running now
    assert world.api.delete(f"/v1/jobs/{job['id']}").json()["state"] == "cancelled"
    worker = world.start_worker()
    time.sleep(6)  # long enough for the worker to start and take the message
    record = world.api.get(f"/v1/jobs/{job['id']}").json()
    assert record["state"] == "cancelled" and record["started"] is None
    assert "not running it" in Path(worker.log_path).read_text()


def test_redis_outage_keeps_sampling_and_refuses_jobs_with_503(world):
    before = world.api.get("/v1/jobs").json()["jobs"]
    port = world.redis_url.rsplit(":", 1)[1].split("/")[0]
    world.redis.terminate()
    world.redis.wait(10)
    assert not redis_answers(world.redis_url)
    try:
        assert world.api.post("/v1/models/quadratic/samples", json={"n": 8, "seed": 1}).status_code == 200
        started = time.monotonic()
        refused = world.api.post("/v1/jobs", json=SHORT)
        assert refused.status_code == 503 and "Redis" in refused.json()["error"]["message"]
        assert time.monotonic() - started < 10
        assert world.api.get("/v1/jobs").json()["jobs"] == before, "no half-recorded job"
    finally:
        world.redis = start_redis(world.redis_url, world.root / "redis")
    assert port in world.redis_url
    job = world.api.post("/v1/jobs", json=SHORT)
    assert job.status_code == 202
    assert world.wait(job.json()["id"], ("succeeded", "failed"), timeout=60)["state"] == "succeeded"


def test_api_restart_keeps_job_states_and_histories(world):
    before = {j["id"]: j for j in world.api.get("/v1/jobs", params={"history": True}).json()["jobs"]}
    world.restart_server()
    after = {j["id"]: j for j in world.api.get("/v1/jobs", params={"history": True}).json()["jobs"]}
    assert set(after) == set(before)
    for job_id, job in before.items():
        assert after[job_id]["state"] == job["state"]
        assert after[job_id]["history"] == job["history"]
    store = open_test_store(world.root)  # the records are the store's, not the API process's
    assert {r["id"] for r in store.jobs.page(limit=1000)[0]} == set(before)
    store.close()


def test_a_queued_job_whose_message_redis_lost_is_sent_again_once(world):
    world.stop_workers()
    job = world.api.post("/v1/jobs", json=SHORT).json()
    stop(world.redis)  # Redis comes back without its data: the queued message is gone
    shutil.rmtree(world.root / "redis")
    world.redis = start_redis(world.redis_url, world.root / "redis")
    requeued = wait_until(lambda: (r := world.api.get(f"/v1/jobs/{job['id']}").json())["requeued"] and r, 20,
                          "the job sent again")
    assert requeued["state"] == "queued" and requeued["requeued"] == 1
    world.start_worker()
    assert world.wait(job["id"], ("succeeded", "failed"), timeout=60)["state"] == "succeeded"


def test_redis_started_by_ganserve_keeps_queued_jobs_across_its_restart(world):
    world.stop_workers()
    job = world.api.post("/v1/jobs", json=SHORT).json()
    time.sleep(1.5)  # appendfsync everysec
    stop(world.redis)
    world.redis = start_redis(world.redis_url, world.root / "redis")  # the same folder: its append-only file
    world.start_worker()
    done = world.wait(job["id"], ("succeeded", "failed"), timeout=60)
    assert done["state"] == "succeeded" and done["requeued"] == 0
