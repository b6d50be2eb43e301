"""X-Ranking says what chose the samples of `filtered` on /samples and on /datasets alike."""
import pytest


@pytest.mark.parametrize("route", ["samples", "datasets"])
def test_filtered_ranking_names_the_classifier_and_the_budget_it_was_given(serving_api, route):
    def ranking(**body) -> str:
        if route == "samples":
            r = serving_api.post("/v1/models/mnist-cgan/samples", json={"n": 4, "seed": 1, "labels": {"3": 4},
                                                                         "format": "npz", **body})
        else:
            r = serving_api.post("/v1/datasets", json={"model": "mnist-cgan", "n": 4, "seed": 1, "format": "npz",
                                                       **body})
        assert r.status_code == 200, r.text
        return r.headers["x-ranking"]

    default = ranking(mode="filtered")
    assert default.startswith("first candidate the classifier gives its label with confidence >= threshold")
    assert "budget 20 per sample" in default
    assert "D logit" not in default and "best 1 of" not in default and "request" not in default
    assert "budget 5 per sample" in ranking(mode="filtered", oversample=5)
    assert ranking(mode="plain") == "none"
