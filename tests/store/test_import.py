"""`ganserve migrate` and `ganserve import-var`: a folder-based var/ of the previous release comes into the store
with one command, numbers and aliases kept, and a second run changes nothing."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid

import numpy as np
import pytest

from service.jobs.protocol import now
from service.repository.store import write_alias
from tests.store.conftest import KINDS
from tests.utils import ROOT, TINY_MODELS, open_test_store, publish_tiny, serve

pytestmark = [pytest.mark.system, pytest.mark.parametrize("database", KINDS, indirect=True)]


def old_var(var):
    """What the folder-based release left in var/: a job record with a snapshot, an upload, versions 1 and 3 of
    a model (2 was deleted) and its aliases."""
    job_id, upload_id = uuid.uuid4().hex, uuid.uuid4().hex
    (var / "jobs" / job_id).mkdir(parents=True)
    record = {"id": job_id, "state": "succeeded", "family": "quadratic", "model": "dots", "config": {"steps": 5},
              "created": "2026-01-01T00:00:00.000+00:00", "started": None, "finished": now(),
              "heartbeat": None, "progress": {"step": 5}, "latest": None, "history": [{"step": 5}],
              "snapshots": [{"step": 5, "file": "5.png"}], "error": None, "result": None, "cancel_requested": False,
              "worker": None, "owner": "key:abc"}
    (var / "jobs" / f"{job_id}.json").write_text(json.dumps(record))
    (var / "jobs" / job_id / "5.png").write_bytes(b"\x89PNG old")
    (var / "uploads" / upload_id).mkdir(parents=True)
    np.savez(var / "uploads" / upload_id / "data.npz", x=np.zeros((2, 4, 4), np.uint8))
    (var / "uploads" / upload_id / "meta.json").write_text(json.dumps({
        "id": upload_id, "filename": "x.npz", "n": 2, "shape": [4, 4], "classes": None, "labelled": False,
        "created": "2026-01-01T00:00:00.000+00:00", "owner": "key:abc", "bytes": 32}))
    for _ in range(3):
        publish_tiny("quadratic", var / "models", model="dots", promote=False)
    shutil.rmtree(var / "models" / "dots" / "2")
    write_alias("dots", "default", 3, var / "models")
    return record, upload_id


def test_import_var_brings_a_folder_release_into_the_store_once(database, tmp_path):
    var = tmp_path / "var"
    record, upload_id = old_var(var)
    env = {**os.environ, "GANSERVE_DATA": str(var), "GANSERVE_DATABASE_URL": database,
           "GANSERVE_REPOSITORY": f"{var / 'models'}:{TINY_MODELS}"}
    run = lambda *args: subprocess.run([sys.executable, "-m", "ganserve.cli", *args], cwd=ROOT, env=env,  # noqa: E731
                                       capture_output=True, text=True, timeout=120)
    migrated = run("migrate", "--import", str(var))
    assert migrated.returncode == 0, migrated.stderr
    assert "schema none -> 0001" in migrated.stdout
    assert json.loads(migrated.stdout.splitlines()[-1])["imported"] == {"jobs": 1, "uploads": 1, "versions": 2,
                                                                        "aliases": 1}
    again = run("import-var")
    assert again.returncode == 0 and json.loads(again.stdout)["imported"] == {"jobs": 0, "uploads": 0, "versions": 0,
                                                                             "aliases": 1}
    store = open_test_store(var, url=database)
    assert store.jobs.read(record["id"]) == {**record, "requeued": 0}
    assert store.jobs.snapshot(record["id"], 5) == b"\x89PNG old"
    assert np.load(store.uploads.path(upload_id))["x"].shape == (2, 4, 4)
    assert sorted(store.versions.live()["dots"]) == [1, 3] and store.versions.aliases()["dots"] == {"default": 3}
    assert store.versions.allocate("dots") == 4
    store.close()
    srv = serve(TINY_MODELS, var, database_url=database)
    with srv.client() as api:
        assert api.get("/v1/models/dots").json()["versions"] == [1, 3]
        assert api.get("/v1/models/dots").json()["default"] == 3
        assert api.get(f"/v1/jobs/{record['id']}/snapshots/5.png").content == b"\x89PNG old"
    srv.stop()
