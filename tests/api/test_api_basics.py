"""The walking skeleton's sampling contract, through real HTTP."""
import io
import os

import numpy as np


def test_same_request_returns_same_bytes(serving_api):
    body = {"n": 50, "seed": 7}
    first = serving_api.post("/v1/models/quadratic/samples", json=body)
    assert first.status_code == 200
    assert first.content == serving_api.post("/v1/models/quadratic/samples", json=body).content
    payload = first.json()
    assert payload["model"] == "quadratic" and payload["seed"] == 7 and len(payload["samples"]) == 50


def test_npy_holds_the_json_numbers(serving_api):
    as_json = np.array(serving_api.post("/v1/models/quadratic/samples", json={"n": 9, "seed": 3}).json()["samples"])
    raw = serving_api.post("/v1/models/quadratic/samples", json={"n": 9, "seed": 3, "format": "npy"}).content
    array = np.load(io.BytesIO(raw))
    assert array.dtype == np.float32 and array.shape == (9, 2)
    np.testing.assert_allclose(array, as_json, atol=1e-6)


def test_bad_n_names_field_and_limit(serving_api):
    assert "n" == serving_api.post("/v1/models/quadratic/samples", json={"n": 0}).json()["error"]["field"]
    over = serving_api.post("/v1/models/quadratic/samples", json={"n": 10**6})
    assert over.status_code == 422 and "1024" in over.json()["error"]["message"]


def test_non_integer_seed_and_malformed_body_are_422(serving_api):
    assert serving_api.post("/v1/models/quadratic/samples", json={"seed": 1.5}).json()["error"]["field"] == "seed"
    bad = serving_api.post("/v1/models/quadratic/samples", content=b'{"n":', headers={"content-type": "application/json"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "body"


def test_unknown_model_is_404_listing_known(serving_api):
    response = serving_api.post("/v1/models/nope/samples", json={})
    assert response.status_code == 404 and "quadratic" in response.json()["error"]["message"]


def test_zip_and_npz_are_the_same_bytes_a_second_later(serving_api):
    import time

    bodies = [{"n": 5, "seed": 11, "format": fmt} for fmt in ("zip", "npz")]
    first = [serving_api.post("/v1/models/quadratic/samples", json=body).content for body in bodies]
    time.sleep(2.1)  # zip timestamps (npz files are zips too) have a two-second resolution
    assert [serving_api.post("/v1/models/quadratic/samples", json=body).content for body in bodies] == first


def test_models_show_the_threads_each_network_was_measured_to_run_best_on(serving_api):
    """Threads are chosen per network at load (GANSERVE_ORT_THREADS=0): one, or one per core from a batch size."""
    threads = serving_api.get("/v1/models/quadratic").json()["version_details"][0]["threads"]
    assert set(threads) == {"generator", "discriminator"}
    for chosen in threads.values():
        assert chosen["chosen"] == "measured" and chosen["threads"][0] == 1
        sessions = 2 if (os.cpu_count() or 1) > 1 else 1  # one thread, then one per core where there are more
        assert "1" in chosen["ms_by_rows"] and len(chosen["ms_by_rows"]["1"]) == sessions
        assert (chosen["wide_from_rows"] is None) == (len(chosen["threads"]) == 1)
