"""The ganserve command as a user runs it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.utils import ROOT, answers, publish_tiny, free_port, stop, store_env, wait_until


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


@pytest.mark.system
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
