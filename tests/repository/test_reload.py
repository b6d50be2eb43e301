"""Hot reload through real HTTP: new versions appear without a restart, broken ones never replace a working one."""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from tests.utils import publish_tiny, serve, wait_until


def version_served(api, name: str) -> int:
    r = api.post(f"/v1/models/{name}/samples", json={"n": 2, "seed": 1})
    assert r.status_code == 200, r.text
    return int(r.headers["x-model-version"])


@pytest.fixture
def repository(tmp_path) -> Path:
    """A repository whose folder the test may add versions to while the server runs."""
    root = tmp_path / "models"
    publish_tiny("quadratic", root, model="dots")
    return root


def serving(repository: Path, data: Path, reload_seconds: float):
    srv = serve(repository, data, reload_seconds=reload_seconds)
    with srv.client() as client:
        yield client, repository
    srv.stop()


@pytest.fixture
def watching(repository, tmp_path):
    yield from serving(repository, tmp_path / "var", 0.2)


@pytest.fixture
def manual(repository, tmp_path):
    """The watcher sleeps for an hour: only POST .../reload picks up a version."""
    yield from serving(repository, tmp_path / "var", 3600)


def test_a_new_version_is_served_without_restart(watching):
    api, repository = watching
    assert version_served(api, "dots") == 1
    publish_tiny("quadratic", repository, model="dots")
    wait_until(lambda: version_served(api, "dots") == 2)
    assert api.post("/v1/models/dots/samples", json={"n": 2, "version": 1}).headers["x-model-version"] == "1"
    assert api.get("/v1/models/dots").json()["versions"] == [1, 2]


def test_a_new_model_appears_without_restart(watching):
    api, repository = watching
    publish_tiny("quadratic", repository, model="more-dots")
    wait_until(lambda: api.post("/v1/models/more-dots/samples", json={"n": 1}).status_code == 200)


def test_a_broken_version_is_reported_and_the_old_one_keeps_serving(watching):
    api, repository = watching
    broken = repository / "dots" / "2"
    shutil.copytree(repository / "dots" / "1", broken)
    (broken / "generator.onnx").write_bytes(b"not an onnx file")
    listed = wait_until(lambda: next((m for m in api.get("/v1/models").json()["models"]
                                      if m["name"] == "dots" and m["errors"]), None))
    assert listed["latest"] == 1 and "2" in listed["errors"]
    assert version_served(api, "dots") == 1
    r = api.post("/v1/models/dots/samples", json={"n": 1, "version": 2})
    assert r.status_code == 404 and "version 2 failed to load" in r.json()["error"]["message"]


def test_post_reload_picks_up_a_version_at_once(manual):
    api, repository = manual
    publish_tiny("quadratic", repository, model="dots")
    time.sleep(0.5)
    assert version_served(api, "dots") == 1  # the watcher sleeps for an hour
    r = api.post("/v1/models/dots/reload")
    assert r.status_code == 200 and r.json()["default"] == 2 and r.json()["latest"] == 2
    assert version_served(api, "dots") == 2


def test_reload_of_an_unknown_model_is_404(manual):
    api, _ = manual
    assert api.post("/v1/models/nothing-here/reload").status_code == 404


def test_a_version_whose_card_lies_is_reported_by_field_and_the_old_one_keeps_serving(watching):
    api, repository = watching
    lying = repository / "dots" / "2"
    shutil.copytree(repository / "dots" / "1", lying)
    card = json.loads((lying / "card.json").read_text())
    (lying / "card.json").write_text(json.dumps({**card, "latent": {**card["latent"], "dim": 50}}))
    listed = wait_until(lambda: api.get("/v1/models/dots").json()["errors"])
    assert "card.latent.dim" in listed["2"]
    assert version_served(api, "dots") == 1
