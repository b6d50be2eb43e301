"""The deployment recipe: two API processes and two workers sharing one data folder and Redis, behind
Debian's nginx with deploy/nginx.conf."""
from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.utils import store_env, ROOT, Server, free_port, start_worker, stop, wait_until

pytestmark = pytest.mark.system
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


@pytest.fixture(scope="module")
def replicas(service_env, tmp_path_factory):
    if not Path(NGINX).exists():
        pytest.fail("the deployment test needs Debian's nginx (apt-get install nginx)")
    root = tmp_path_factory.mktemp("replicas")
    # A data folder and a Redis database of their own: the session's worker must not take these jobs.
    env = {**service_env, "GANSERVE_DATA": str(root), "GANSERVE_REPOSITORY": f"{root / 'models'}:"
           + service_env["GANSERVE_REPOSITORY"].split(":", 1)[1],
           "GANSERVE_REDIS_URL": service_env["GANSERVE_REDIS_URL"].rsplit("/", 1)[0] + "/3", **store_env(root)}
    apis = [Server(env, root / f"api-{i}.log") for i in range(2)]
    workers = [start_worker(env, root / f"worker-{i}.log") for i in range(2)]
    port = free_port()
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    for key, value in {"@LISTEN@": port, "@API_1@": apis[0].port, "@API_2@": apis[1].port, "@PREFIX@": root}.items():
        conf = conf.replace(key, str(value))
    (root / "nginx.conf").write_text(conf)
    nginx = subprocess.Popen([NGINX, "-p", str(root), "-c", str(root / "nginx.conf")],
                             stdout=open(root / "nginx.out", "w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: _answers(url + "/healthz"), 15, "nginx answering")
    yield url, apis, workers
    stop(nginx)
    for process in workers:
        stop(process)
    for api in apis:
        if api.process.poll() is None:
            api.stop()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_a_job_submitted_through_one_api_is_listed_streamed_and_served_by_the_other(replicas):
    url, (first, second), _ = replicas
    with httpx.Client(base_url=first.url, timeout=30) as a, httpx.Client(base_url=second.url, timeout=30) as b:
        job = a.post("/v1/jobs", json={"family": "quadratic", "steps": 300, "params": {"g_hidden": 8}}).json()
        assert job["id"] in [j["id"] for j in b.get("/v1/jobs").json()["jobs"]]
        events = []
        with b.stream("GET", f"/v1/jobs/{job['id']}/events", timeout=120) as stream:
            for line in stream.iter_lines():
                if line.startswith("data: "):
                    events.append(json.loads(line[6:]))
        assert events[-1]["state"] == "succeeded"
        model = job["model"]
        wait_until(lambda: a.get(f"/v1/models/{model}").status_code == 200 and
                   b.get(f"/v1/models/{model}").status_code == 200, 10, "both APIs listing the new model")
        versions = {api.post(f"/v1/models/{model}/samples", json={"n": 2, "version": 1}).headers["x-model-version"]
                    for api in (a, b)}
        assert versions == {"1"}


def test_killing_one_api_under_load_loses_only_its_in_flight_gets_behind_the_proxy(replicas):
    """What the README promises. A GET the dead API had not begun to answer goes to the other one: never a 502.
    One it had begun to answer (nginx has passed its headers on and cannot retry) is cut off, at most one per
    client. Every GET begun after the kill is answered."""
    url, (first, second), _ = replicas
    results, stop_load, clients = [], threading.Event(), 4

    def load():
        with httpx.Client(base_url=url, timeout=10) as client:
            while not stop_load.is_set():
                began = time.monotonic()
                try:
                    outcome = client.get("/v1/models/quadratic/samples.png", params={"n": 4}).status_code
                except httpx.HTTPError as exc:
                    outcome = type(exc).__name__
                results.append((began, outcome))

    threads = [threading.Thread(target=load) for _ in range(clients)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    first.process.kill()  # no goodbye: in-flight requests on it die with it
    first.process.wait()
    dead = time.monotonic()  # its sockets are closed: a GET begun from here on never reaches it
    time.sleep(2.0)
    stop_load.set()
    for t in threads:
        t.join()
    first.log.close()
    lost = [outcome for _, outcome in results if outcome != 200]
    assert len(results) > 20 and len(lost) <= clients and set(lost) <= {"RemoteProtocolError", "ReadError"}, lost
    after = [outcome for began, outcome in results if began > dead]
    assert len(after) > 20 and set(after) == {200}, {r: after.count(r) for r in set(after)}
    with httpx.Client(base_url=url, timeout=10) as client:
        assert client.get("/v1/models").status_code == 200
