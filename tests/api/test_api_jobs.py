"""Job submission through HTTP: validation happens at submission, not in the worker."""
import pytest


@pytest.mark.parametrize("body, field", [
    ({"family": "no-such-family"}, "family"),
    ({"family": "quadratic", "steps": 0}, "steps"),
    ({"family": "quadratic", "steps": 10**9}, "steps"),
    ({"family": "quadratic", "params": {"lr": 5.0}}, "params.lr"),
    ({"family": "quadratic", "params": {"g_hidden": "many"}}, "params.g_hidden"),
    ({"family": "quadratic", "params": {"nope": 1}}, "params"),
    ({"family": "quadratic", "extra": 1}, "extra"),
])
def test_invalid_job_is_refused_with_the_field(api, body, field):
    response = api.post("/v1/jobs", json=body)
    assert response.status_code == 422
    error = response.json()["error"]
    assert field in error["message"]


def test_unknown_job_is_404(api):
    assert api.get("/v1/jobs/0123abcd").status_code == 404


def test_families_lists_params_with_limits(api):
    families = api.get("/v1/families").json()["families"]
    lr = families["quadratic"]["params"]["lr"]
    assert lr["min"] < lr["default"] < lr["max"]


def test_families_carry_their_quality_gates(serving_api):
    from service.jobs.protocol import catalog

    families = serving_api.get("/v1/families").json()["families"]
    assert {name: family["gate"] for name, family in families.items()} == \
        {name: family["gate"] for name, family in catalog().items()}
    assert {"metric": "plain.mean_abs_residual", "op": "<=", "limit": 0.01} in families["quadratic"]["gate"]
    assert {"metric": "plain.x_bins_covered", "op": ">=", "limit": 16} in families["quadratic"]["gate"]
    assert all(families[name]["gate"] for name in ("mnist-cgan", "mnist-dcgan", "curves", "digits-cyclegan"))
