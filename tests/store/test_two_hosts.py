"""Two "hosts" that share no folder: two API processes and two workers, each with its own GANSERVE_DATA and
writable repository folder, sharing only Redis and a PostgreSQL database. What one publishes, moves or deletes,
every other sees within 2 s; a job's upload, snapshots and published version cross without a shared path."""
from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import pytest

from tests.store.conftest import PG_SERVER
from tests.utils import (Server, TINY, create_database, drop_database, open_test_store, publish_tiny, start_worker,
                         stop, wait_job, wait_until)

pytestmark = pytest.mark.system
QUICK = {"family": "quadratic", "steps": 300, "params": {"g_hidden": 8}}


class Hosts:
    def __init__(self, root: Path, tiny_repository: Path, redis_url: str):
        self.root, self.database = root, create_database(PG_SERVER)
        self.homes = [root / f"host-{i}" for i in range(4)]  # api 1, api 2, worker 1, worker 2
        self.envs = [{"GANSERVE_DATA": str(home), "GANSERVE_REPOSITORY": f"{home / 'models'}:{tiny_repository}",
                      "GANSERVE_DATABASE_URL": self.database, "GANSERVE_REDIS_URL": redis_url.rsplit("/", 1)[0] + "/5",
                      "GANSERVE_RELOAD_SECONDS": "5", "GANSERVE_API_KEYS": "", "GANSERVE_TRAIN_THREADS": "1"}
                     for home in self.homes]
        self.apis = [Server(env, home.parent / f"{home.name}.log") for env, home in zip(self.envs[:2], self.homes)]
        self.workers = [start_worker(env, home.parent / f"{home.name}.log") for env, home in
                        zip(self.envs[2:], self.homes[2:])]
        self.clients = [api.client() for api in self.apis]

    def close(self) -> None:
        for client in self.clients:
            client.close()
        for worker in self.workers:
            stop(worker)
        for api in self.apis:
            api.stop()
        drop_database(self.database)


@pytest.fixture(scope="module")
def hosts(tmp_path_factory, tiny_repository, redis_url):
    world = Hosts(tmp_path_factory.mktemp("hosts"), tiny_repository, redis_url)
    yield world
    world.close()


def served(client, name: str, version: int | None = None) -> int | None:
    body = {"n": 2, "seed": 1, **({"version": version} if version else {})}
    answer = client.post(f"/v1/models/{name}/samples", json=body)
    return int(answer.headers["x-model-version"]) if answer.status_code == 200 else None


def test_no_path_is_shared_between_the_hosts(hosts):
    writable = [Path(env["GANSERVE_REPOSITORY"].split(":")[0]).resolve() for env in hosts.envs]
    data = [Path(env["GANSERVE_DATA"]).resolve() for env in hosts.envs]
    for i, mine in enumerate(data):
        for j, theirs in enumerate(data + writable):
            if j % len(data) != i:
                assert mine not in theirs.parents and theirs not in mine.parents and mine != theirs


def test_a_job_through_api_1_is_served_by_api_2_and_an_alias_moved_on_api_2_is_followed_by_api_1(hosts):
    one, two = hosts.clients
    job = one.post("/v1/jobs", json=QUICK).json()
    done = wait_job(two, job["id"], ("succeeded", "failed"), timeout=240)
    finished = time.monotonic()
    assert done["state"] == "succeeded", done["error"]
    name, version = done["result"]["model"], done["result"]["version"]
    wait_until(lambda: served(two, name, version) == version, 2, "API 2 serving the new version")
    assert time.monotonic() - finished < 2
    worker_home = next(h for h in hosts.homes[2:] if (h / "models" / name / str(version)).is_dir())
    assert done["worker"] and worker_home  # published from the worker's own folder, fetched by the APIs
    assert (hosts.homes[1] / "models" / name / str(version) / "generator.onnx").is_file()
    snapshot = two.get(done["snapshots"][-1]["url"])
    assert snapshot.status_code == 200 and snapshot.content.startswith(b"\x89PNG")

    store = open_test_store(hosts.root / "publisher", url=hosts.database)  # a fifth machine publishes v2
    publish_tiny("quadratic", hosts.root / "publisher" / "models", model=name, store=store, promote=False)
    store.close()
    # Under the full suite's load API 1 once answered this without `versions` inside the window (not seen alone):
    # the listing must show v2 within the 2 s, whatever a poll in between said.
    wait_until(lambda: 2 in one.get(f"/v1/models/{name}").json().get("versions", []), 2, "API 1 listing v2")
    moved = two.put(f"/v1/models/{name}/aliases/default", json={"version": 2})
    assert moved.status_code == 200, moved.text
    started = time.monotonic()
    wait_until(lambda: served(one, name) == 2, 2, "API 1 following the alias")
    assert time.monotonic() - started < 2


def test_a_job_trains_on_an_upload_made_through_the_other_api(hosts):
    one, two = hosts.clients
    buffer = io.BytesIO()
    np.savez(buffer, x=np.random.default_rng(0).integers(0, 256, (40, 28, 28), dtype=np.uint8), y=np.arange(40) % 10)
    upload = two.post("/v1/data", files={"file": ("digits.npz", buffer.getvalue())})
    assert upload.status_code == 201, upload.text
    params = {k: v for k, v in TINY["mnist-cgan"].items() if k != "latent_dim"}
    job = one.post("/v1/jobs", json={"family": "mnist-cgan", "data": upload.json()["id"], "steps": 2,
                                     "params": params, "model": "far-digits"}).json()
    done = wait_job(one, job["id"], ("succeeded", "failed"), timeout=240)
    assert done["state"] == "succeeded", done["error"]
    assert not any((home / "uploads").exists() for home in hosts.homes)  # the data crossed in the database


def test_deleted_bytes_are_never_served_again_and_the_number_is_not_reused(hosts):
    one, two = hosts.clients
    store = open_test_store(hosts.root / "publisher", url=hosts.database)
    first = publish_tiny("quadratic", hosts.root / "publisher" / "models", model="gone", store=store)
    second = publish_tiny("quadratic", hosts.root / "publisher" / "models", model="gone", store=store, promote=False)
    number = int(second.name)
    for client in (one, two):
        wait_until(lambda: served(client, "gone", number) == number, 2, "the version served")
    assert one.delete(f"/v1/models/gone/versions/{number}").status_code == 200
    assert served(one, "gone", number) is None  # the deleting process: at once
    wait_until(lambda: served(two, "gone", number) is None, 2, "the other process unloading it")
    assert not (hosts.homes[1] / "models" / "gone" / str(number)).exists()  # nor its local copy
    again = publish_tiny("curves-cgan", hosts.root / "publisher" / "models", model="gone", store=store, promote=False)
    store.close()
    assert int(again.name) == number + 1 and int(first.name) < number
    for client in (one, two):
        wait_until(lambda: served(client, "gone", number + 1) == number + 1, 2, "the new version served")
        assert served(client, "gone", number) is None
        assert client.get("/v1/models/gone", params={"version": number + 1}).json()["card"]["family"] == "curves-cgan"
