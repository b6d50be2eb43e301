"""A job names its device: workers advertise theirs in Redis, a job asking for a GPU no worker has is a 422 at
submission, and a job that ran says what it ran on, in its record and in its card's lineage."""
from __future__ import annotations

import json

import pytest
import redis
import torch

from service.jobs.workers import PREFIX, TTL_SECONDS
from tests.utils import wait_job, wait_until

pytestmark = pytest.mark.system


def advertised(redis_url: str) -> list[dict]:
    client = redis.Redis.from_url(redis_url)
    return [json.loads(client.get(key)) for key in client.scan_iter(match=PREFIX + "*")]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU: cuda is not refused")
def test_a_cuda_job_without_a_gpu_worker_is_422_naming_the_field(api, worker, redis_url):
    wait_until(lambda: advertised(redis_url), 60, "the worker advertising its devices")
    assert all(info["devices"] == ["cpu"] for info in advertised(redis_url))
    client = redis.Redis.from_url(redis_url)  # a killed worker drops out when its key expires
    assert all(0 < client.ttl(key) <= TTL_SECONDS for key in client.scan_iter(match=PREFIX + "*"))
    response = api.post("/v1/jobs", json={"family": "quadratic", "steps": 10, "device": "cuda"})
    assert response.status_code == 422, response.text
    assert "device" in response.text and "cuda" in response.text and "cpu" in response.text
    assert not [j for j in api.get("/v1/jobs").json()["jobs"] if j["config"].get("device") == "cuda"]  # nothing kept
    unknown = api.post("/v1/jobs", json={"family": "quadratic", "steps": 10, "device": "tpu"})
    assert unknown.status_code == 422 and "device" in unknown.text


def test_workers_on_one_machine_are_counted_so_each_takes_its_share(redis_url):
    from service.jobs.workers import advertise, host_id, on_host

    client = redis.Redis.from_url(redis_url)
    before = sum(info.get("host") == host_id() for info in advertised(redis_url))  # the session's worker, if up
    advertise(client, "test-a", {"devices": ["cpu"], "host": host_id()})
    advertise(client, "test-b", {"devices": ["cpu"], "host": "elsewhere"})
    try:
        assert on_host(client, host_id()) == before + 1 and on_host(client, "elsewhere") == 1
    finally:
        client.delete(PREFIX + "test-a", PREFIX + "test-b")


def test_a_job_says_what_it_ran_on_in_its_record_and_lineage(api, worker, server):
    job = api.post("/v1/jobs", json={"family": "quadratic", "steps": 40, "device": "cpu"}).json()
    assert job["config"]["device"] == "cpu"
    done = wait_job(api, job["id"], ("succeeded", "failed", "cancelled"))
    assert done["state"] == "succeeded", done["error"]
    ran = done["hardware"]
    assert ran["device"] == "cpu" and ran["threads"] == 1 and ran["threads_chosen"] == "configured"  # the session's env
    version = done["result"]["version"]
    wait_until(lambda: api.get(f"/v1/models/{job['model']}?version={version}").status_code == 200, 10, "the rescan")
    lineage = api.get(f"/v1/models/{job['model']}?version={version}").json()["card"]["lineage"]
    assert lineage["hardware"]["device"] == "cpu" and lineage["hardware"]["threads"] == 1
