"""Keys are tenants: with two keys and an admin key, what one key makes the other can neither see nor change
(another's job or upload is 404, as if it did not exist; another's model is 403, since models are public),
while sampling stays open and an admin key acts on everything. The app in-process, on a Redis of the tests'
own (no worker: jobs stay queued)."""
from __future__ import annotations

import io

import numpy as np
import pytest

from service.keys import key_id
from tests.utils import TINY_MODELS, app_client, publish_tiny

ALICE, BOB, ADMIN = "alice-key-0001", "bob-key-0002", "admin-key-0003"


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def tenants(tmp_path_factory, redis_url):
    data = tmp_path_factory.mktemp("tenants")
    own_db = redis_url.rsplit("/", 1)[0] + "/5"  # no worker listens here: the jobs stay queued
    with app_client(TINY_MODELS, data, api_keys=f"{ALICE},{BOB}", admin_keys=ADMIN, redis_url=own_db,
                    reconcile_seconds=3600) as api:
        yield api


@pytest.fixture(scope="module")
def alices(tenants):
    """A job and an upload of Alice's."""
    buffer = io.BytesIO()
    np.savez(buffer, x=np.random.default_rng(0).integers(0, 255, (20, 8, 8), np.uint8), y=np.arange(20) % 2)
    upload = tenants.post("/v1/data", headers=auth(ALICE), files={"file": ("a.npz", buffer.getvalue())})
    assert upload.status_code == 201, upload.text
    job = tenants.post("/v1/jobs", headers=auth(ALICE), json={"family": "quadratic", "steps": 5, "model": "alices"})
    assert job.status_code == 202, job.text
    return {"job": job.json()["id"], "upload": upload.json()["id"]}


@pytest.mark.parametrize("method, path", [
    ("get", "/v1/jobs/{job}"), ("get", "/v1/jobs/{job}/events"), ("delete", "/v1/jobs/{job}"),
    ("get", "/v1/jobs/{job}/snapshots/1.png"), ("get", "/v1/data/{upload}"), ("delete", "/v1/data/{upload}")])
def test_another_keys_job_or_upload_is_404(tenants, alices, method, path):
    url = path.format(**alices)
    r = tenants.request(method, url, headers=auth(BOB))
    assert r.status_code == 404, r.text
    assert alices["job"] not in r.text or "unknown job" in r.text  # says nothing but that it is unknown
    if method == "get" and not url.endswith(("/events", ".png")):  # an admin reads it (and leaves it be)
        assert tenants.get(url, headers=auth(ADMIN)).status_code == 200


def test_listings_show_a_key_its_own_and_an_admin_everything(tenants, alices):
    def ids(key, path, field):
        return {item["id"] for item in tenants.get(path, headers=auth(key)).json()[field]}
    assert alices["job"] in ids(ALICE, "/v1/jobs", "jobs") and alices["job"] not in ids(BOB, "/v1/jobs", "jobs")
    assert alices["job"] in ids(ADMIN, "/v1/jobs", "jobs")
    assert alices["upload"] in ids(ALICE, "/v1/data", "data") and not ids(BOB, "/v1/data", "data")
    assert alices["upload"] in ids(ADMIN, "/v1/data", "data")


def test_another_keys_upload_cannot_be_trained_on(tenants, alices):
    r = tenants.post("/v1/jobs", headers=auth(BOB), json={"family": "mnist-cgan", "data": alices["upload"]})
    assert r.status_code == 422 and r.json()["error"]["field"] == "data"
    assert "neither" in r.json()["error"]["message"]  # as if it did not exist


def test_another_keys_model_name_is_refused_at_submit(tenants, alices):
    r = tenants.post("/v1/jobs", headers=auth(BOB), json={"family": "quadratic", "steps": 5, "model": "alices"})
    # the name was taken by Alice's job when it publishes; a shipped name is the operator's from the start
    shipped = tenants.post("/v1/jobs", headers=auth(BOB), json={"family": "quadratic", "model": "quadratic"})
    assert shipped.status_code == 403 and shipped.json()["error"]["field"] == "model"
    assert r.status_code in (202, 403)


def test_a_models_aliases_and_versions_are_its_owners(tenants, tmp_path):
    state = tenants.app.state
    # a version of Alice's, published as her job would be
    writable = state.settings.writable_repository
    for _ in range(2):
        publish_tiny("quadratic", writable, model="dots", promote=False, store=state.store, owner=key_id(ALICE))
    tenants.post("/v1/models/dots/reload", headers=auth(ALICE))
    move = {"version": 2}
    assert tenants.put("/v1/models/dots/aliases/default", headers=auth(BOB), json=move).status_code == 403
    assert tenants.delete("/v1/models/dots/versions/1", headers=auth(BOB)).status_code == 403
    assert tenants.put("/v1/models/dots/aliases/default", headers=auth(ALICE), json=move).status_code == 200
    assert tenants.delete("/v1/models/dots/versions/1", headers=auth(ALICE)).status_code == 200
    # a shipped model's default moves only for an admin, and sampling stays open to all
    shipped = {"version": 1}
    assert tenants.put("/v1/models/mnist-cgan/aliases/default", headers=auth(ALICE), json=shipped).status_code == 403
    assert tenants.put("/v1/models/mnist-cgan/aliases/default", headers=auth(ADMIN), json=shipped).status_code == 200
    assert tenants.post("/v1/models/dots/samples", json={"n": 2}).status_code == 200


def test_deleting_an_upload_frees_its_quota(tenants):
    buffer = io.BytesIO()
    np.savez(buffer, x=np.zeros((4, 8, 8), np.uint8))
    upload = tenants.post("/v1/data", headers=auth(BOB), files={"file": ("b.npz", buffer.getvalue())}).json()
    assert tenants.delete(f"/v1/data/{upload['id']}", headers=auth(BOB)).status_code == 204
    assert tenants.get(f"/v1/data/{upload['id']}", headers=auth(BOB)).status_code == 404
    assert tenants.app.state.store.uploads.used(key_id(BOB)) == 0


def test_what_a_key_makes_is_owned_by_its_id_never_the_key(tenants, alices):
    stored = tenants.app.state.store.uploads.get(alices["upload"])
    job = tenants.app.state.store.jobs.read(alices["job"])
    assert stored["owner"] == job["owner"] == key_id(ALICE) and ALICE not in str(stored) + str(job)
    assert "owner" not in tenants.get(f"/v1/data/{alices['upload']}", headers=auth(ALICE)).json()
