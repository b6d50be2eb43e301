"""Aliases and retention over real HTTP: the default moves only when asked, survives restarts, and is
followed by every API process; only job-made, unaliased versions can be deleted."""
from __future__ import annotations

import pytest

from tests.utils import open_test_store, publish_tiny, serve, wait_until

pytestmark = pytest.mark.system  # real API processes (serve)
BODY = {"n": 4, "seed": 2, "format": "npy"}


@pytest.fixture
def folders(tmp_path):
    """A shipped folder with dots v1 (its default) and a store holding v2, published unpromoted."""
    shipped, data = tmp_path / "models", tmp_path / "var"
    publish_tiny("quadratic", shipped, model="dots")
    store = open_test_store(data)
    publish_tiny("quadratic", data / "models", model="dots", others=(shipped,), promote=False, store=store)
    store.close()
    return shipped, data


def served_version(api) -> str:
    response = api.post("/v1/models/dots/samples", json=BODY)
    assert response.status_code == 200, response.text
    return response.headers["x-model-version"]


def test_an_unpromoted_version_is_listed_but_not_the_default(folders):
    srv = serve(*folders)
    with srv.client() as api:
        model = api.get("/v1/models/dots").json()
        assert model["versions"] == [1, 2] and model["default"] == 1 and model["latest"] == 2
        assert [(v["version"], v["source"], v["promoted"]) for v in model["version_details"]] == [
            (1, "shipped", True), (2, "writable", False)]
        assert served_version(api) == "1"
    srv.stop()


def test_moving_the_default_is_followed_by_every_process_and_survives_a_restart(folders):
    first, second = serve(*folders), serve(*folders)
    with first.client() as a, second.client() as b:
        moved = a.put("/v1/models/dots/aliases/default", json={"version": 2})
        assert moved.status_code == 200 and moved.json()["default"] == 2
        assert served_version(a) == "2"
        wait_until(lambda: served_version(b) == "2", 5, "the other process following the alias")
    first.stop()
    second.stop()
    restarted = serve(*folders)
    with restarted.client() as api:
        assert served_version(api) == "2" and api.get("/v1/models/dots").json()["aliases"] == {"default": 2}
    restarted.stop()


def test_an_alias_must_point_at_a_version_that_loads(folders):
    shipped, data = folders
    store = open_test_store(data)
    publish_tiny("quadratic", data / "models", model="dots", others=(shipped,), promote=False, store=store,
                 broken="generator.onnx")  # v3
    store.close()
    srv = serve(shipped, data)
    with srv.client() as api:
        assert api.put("/v1/models/dots/aliases/default", json={"version": 9}).status_code == 404
        broken = api.put("/v1/models/dots/aliases/default", json={"version": 3})
        assert broken.status_code == 404 and "failed to load" in broken.json()["error"]["message"]
        assert api.put("/v1/models/dots/aliases/Bad Name", json={"version": 1}).status_code == 422
        assert served_version(api) == "1"
    srv.stop()


def test_only_job_made_versions_no_alias_points_at_can_be_deleted(folders):
    srv = serve(*folders)
    with srv.client() as api:
        shipped = api.delete("/v1/models/dots/versions/1")
        assert shipped.status_code == 409 and "read-only" in shipped.json()["error"]["message"]
        api.put("/v1/models/dots/aliases/best", json={"version": 2})
        aliased = api.delete("/v1/models/dots/versions/2")
        assert aliased.status_code == 409 and "aliased as best" in aliased.json()["error"]["message"]
        api.put("/v1/models/dots/aliases/best", json={"version": 1})
        deleted = api.delete("/v1/models/dots/versions/2")
        assert deleted.status_code == 200 and deleted.json()["versions"] == [1]
        assert not (srv.writable / "dots" / "2").exists()
        assert api.delete("/v1/models/dots/versions/2").status_code == 404
    srv.stop()
