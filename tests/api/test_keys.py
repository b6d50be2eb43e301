"""API keys: job submission, cancel and uploads need one when keys are configured; sampling stays open."""
import httpx
import pytest

from tests.utils import Server

KEY = "test-key-5b0c7e"


@pytest.fixture(scope="module")
def keyed(service_env, tmp_path_factory):
    log = tmp_path_factory.mktemp("keyed") / "server.log"
    srv = Server({**service_env, "GANSERVE_API_KEYS": f"other-key,{KEY}", "GANSERVE_MAX_UPLOAD_BYTES": "5000"}, log)
    with httpx.Client(base_url=srv.url, timeout=30) as client:
        yield client, log
    srv.stop()


def test_missing_key_is_401_and_wrong_key_is_403(keyed):
    client, _ = keyed
    assert client.post("/v1/jobs", json={"family": "quadratic"}).status_code == 401
    wrong = client.post("/v1/jobs", json={"family": "quadratic"}, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 403
    assert client.delete("/v1/jobs/abc").status_code == 401
    assert client.post("/v1/data", files={"file": ("a.zip", b"x")}).status_code == 401


def test_right_key_passes_and_is_never_logged(keyed):
    client, log = keyed
    response = client.post("/v1/jobs", json={"family": "no-such"}, headers={"Authorization": f"Bearer {KEY}"})
    assert response.status_code == 422  # past the key check, refused for its family
    assert KEY not in log.read_text()


def test_sampling_stays_open(keyed):
    client, _ = keyed
    assert client.post("/v1/models/quadratic/samples", json={"n": 2}).status_code == 200


def test_upload_over_the_size_limit_is_413(keyed):
    client, _ = keyed
    response = client.post("/v1/data", files={"file": ("a.zip", b"x" * 6000)},
                           headers={"Authorization": f"Bearer {KEY}"})
    assert response.status_code == 413 and "5000" in response.json()["error"]["message"]


@pytest.mark.parametrize("path", ["/v1/jobs", "/v1/jobs/" + "0" * 32, "/v1/jobs/" + "0" * 32 + "/events",
                                  "/v1/data", "/v1/data/" + "0" * 32])
def test_reading_jobs_and_uploads_needs_a_key_and_listing_models_does_not(keyed, path):
    client, _ = keyed
    assert client.get(path).status_code == 401
    assert client.get(path, headers={"Authorization": f"Bearer {KEY}"}).status_code in (200, 404)
    assert client.get("/v1/models").status_code == 200 and client.get("/v1/models/quadratic").status_code == 200


def test_reloading_and_moving_aliases_need_a_key(keyed):
    client, _ = keyed
    assert client.post("/v1/models/quadratic/reload").status_code == 401
    assert client.put("/v1/models/quadratic/aliases/default", json={"version": 1}).status_code == 401
    assert client.delete("/v1/models/quadratic/versions/1").status_code == 401
