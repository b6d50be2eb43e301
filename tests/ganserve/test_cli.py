"""The ganserve command as a user runs it."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from PIL import Image

from ganserve.launcher import redis_answers
from tests.utils import ROOT, answers, free_port, publish_tiny, stop, store_env, wait_until

pytestmark = pytest.mark.system  # every test here runs ganserve in a process of its own


def test_offline_train_publishes_into_the_writable_folder_numbered_after_every_other(tmp_path):
    writable, shipped = tmp_path / "var" / "models", tmp_path / "models"
    publish_tiny("quadratic", shipped)  # a "shipped" quadratic v1
    env = {**os.environ, "GANSERVE_REPOSITORY": f"{writable}:{shipped}", "GANSERVE_DATA": str(tmp_path / "var"),
           **store_env(tmp_path / "var")}
    out = subprocess.run([sys.executable, "-m", "ganserve.cli", "train", "quadratic", "--steps", "2",
                          "--param", "g_hidden=8", "--param", "d_hidden=8"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "train quadratic" in out.stderr and "2/2" in out.stderr  # the progress bar reached the last step
    assert "trained on cpu" in out.stderr  # what it ran on, as the card's lineage has it
    assert json.loads(out.stdout)["published"] == str(writable / "quadratic" / "2")
    assert not (shipped / "quadratic" / "2").exists()  # the shipped folder untouched


def test_catalog_check_is_a_subcommand_that_finds_the_shipped_catalog_current():
    out = subprocess.run([sys.executable, "-m", "ganserve.cli", "catalog", "--check"], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("catalog.json is current")


def test_a_param_that_is_not_key_value_is_refused_before_any_work():
    out = subprocess.run([sys.executable, "-m", "ganserve.cli", "train", "quadratic", "--param", "lr"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "--param: expected KEY=VALUE, got 'lr'" in out.stderr


def test_training_on_cuda_without_a_gpu_is_refused_naming_the_option():
    if pytest.importorskip("torch").cuda.is_available():
        pytest.skip("this machine has a GPU")
    out = subprocess.run([sys.executable, "-m", "ganserve.cli", "train", "quadratic", "--device", "cuda"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and "--device: cuda" in out.stderr and "no GPU" in out.stderr, out.stderr


def test_serve_with_two_workers_answers_from_two_processes_sharing_the_cores(tiny_repository, tmp_path):
    """`ganserve serve --workers 2`: two API processes on one port, each with sessions of its own, whose
    measured threads are held to its share of the cores."""
    port = free_port()
    env = {**os.environ, "GANSERVE_REPOSITORY": f"{tmp_path / 'models'}:{tiny_repository}",
           "GANSERVE_DATA": str(tmp_path), "GANSERVE_API_KEYS": "", **store_env(tmp_path)}
    process = subprocess.Popen([sys.executable, "-m", "ganserve.cli", "serve", "--port", str(port), "--workers", "2",
                                "--quiet"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: answers(url + "/readyz", process), 60, "two workers answering")
        # uvicorn spawns its workers with multiprocessing (beside them runs multiprocessing's resource tracker)
        workers = wait_until(lambda: len(found := spawned(process.pid)) >= 2 and found, 30, "two workers")
        assert len(workers) == 2
        share = max(1, (os.cpu_count() or 1) // 2)
        with httpx.Client(base_url=url, timeout=30) as client:
            for _ in range(4):  # a few requests, whichever process takes them
                assert client.post("/v1/models/quadratic/samples", json={"n": 4, "seed": 1, "format": "npy"}).status_code == 200
            threads = client.get("/v1/models/quadratic").json()["version_details"][0]["threads"]
        assert set(threads) == {"generator", "discriminator"}
        assert all(max(t["threads"]) <= share and t["chosen"] == "measured" for t in threads.values())
    finally:
        stop(process)


def spawned(pid: int) -> list[str]:
    """The children of a process that multiprocessing spawned as workers."""
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [c for c in children if "spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes().decode(errors="replace")]


def test_up_uses_its_own_redis_prints_url_key_and_three_working_commands_last_and_ctrl_c_exits_0(tiny_repository,
                                                                                                   tmp_path):
    """`make run` on a fresh clone: no GANSERVE_ setting but the folders; a Redis answering at 6379 is not used."""
    import redis

    from tests.ganserve.launched import Launched

    up = Launched(tmp_path / "var", f"{tmp_path / 'var' / 'models'}:{tiny_repository}")
    try:
        said = up.ready_lines[0]
        url = re.match(r"^Redis: (redis://127\.0\.0\.1:(\d+)/0) \(its own, data in (\S+);", said)
        assert url and url[2] != "6379" and Path(url[3]) == tmp_path / "var" / "redis", said
        assert redis.Redis.from_url(url[1]).config_get("dir")["dir"] == str((tmp_path / "var" / "redis").resolve())
        # The last lines: where it is, the key (kept for the next run), then three commands to try.
        assert up.ready_lines[-6].startswith(f"ganserve is ready: {up.url}/")
        assert up.ready_lines[-5] == f"API key (an admin key: jobs, uploads, every model): {up.key}"
        assert (tmp_path / "var" / "api-key").read_text().strip() == up.key
        assert up.ready_lines[-4] == "try:"
        # A second `up` on the same data folder refuses, and leaves the first one's Redis alone.
        env = {k: v for k, v in os.environ.items() if not k.startswith("GANSERVE_")}
        second = subprocess.run([sys.executable, "-m", "ganserve.cli", "up", "--port", str(free_port())], cwd=ROOT,
                                env={**env, "GANSERVE_DATA": str(tmp_path / "var")}, capture_output=True, text=True,
                                timeout=60)
        assert second.returncode == 1 and "another `ganserve up` is running" in second.stderr, second.stderr
        assert redis_answers(url[1])
        with httpx.Client(base_url=up.url, timeout=30) as client:
            assert client.get("/v1/jobs").status_code == 401
            wait_until(lambda: client.get("/readyz").json()["redis"] == "up", 30, "the API seeing its Redis")
            # Each printed command works as printed (curl --fail: a 2xx), the job through the worker it started.
            for command in up.try_commands():
                assert command.startswith("curl ")
                done = subprocess.run(["bash", "-c", "curl --fail --silent --show-error " + command[len("curl "):]],
                                      cwd=tmp_path, capture_output=True, text=True, timeout=60)
                assert done.returncode == 0, (command, done.stderr)
            assert Image.open(tmp_path / "digits.png").size == (10 * 28, 4 * 28)
            job = json.loads(done.stdout)
            assert job["state"] == "queued" and job["config"]["steps"] == 3000
            headers = {"authorization": f"Bearer {up.key}"}
            wait_until(lambda: client.get(f"/v1/jobs/{job['id']}", headers=headers).json()["state"] != "queued", 120,
                       "the worker taking the job")
            client.delete(f"/v1/jobs/{job['id']}", headers=headers)
    finally:
        status = up.interrupt()
    assert status == 0, "\n".join(up.lines)
    assert up.lines[-1] == "stopping ..."
    assert up.session() == [] and not redis_answers(url[1])  # the worker, the API and its Redis have stopped


def test_the_generated_key_is_kept_for_the_next_run_and_configured_keys_print_none(tmp_path):
    from ganserve.launcher import api_key
    from service.settings import Settings

    first = api_key(Settings(data=tmp_path))
    assert first and api_key(Settings(data=tmp_path)) == first
    assert (tmp_path / "api-key").stat().st_mode & 0o077 == 0  # readable by its owner only
    assert api_key(Settings(data=tmp_path / "other", api_keys="a,b")) is None


def test_up_uses_the_redis_ganserve_redis_url_names(redis_url, tmp_path):
    from ganserve.launcher import choose_redis
    from service.settings import Settings

    broker = choose_redis(Settings(redis_url=redis_url, data=tmp_path))
    assert broker.url == redis_url and broker.process is None and broker.said == f"{redis_url} (GANSERVE_REDIS_URL)"


def test_up_stops_the_redis_a_killed_run_left_before_starting_its_own(tmp_path):
    from ganserve.launcher import choose_redis
    from service.settings import Settings

    settings = Settings(data=tmp_path)
    started = [choose_redis(settings)]  # a run killed before it could stop its Redis
    try:
        started.append(choose_redis(settings))
        left, ours = started
        assert left.process.wait(10) == 0 and ours.url != left.url and redis_answers(ours.url)
        assert (tmp_path / "redis" / "url").read_text().strip() == ours.url
    finally:
        for broker in started:
            stop(broker.process)
