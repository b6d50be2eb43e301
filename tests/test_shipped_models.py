"""Every shipped model meets its bar, measured again by the project's evaluator (training is not
repeated in CI), and its card's numbers are the ones the evaluator gives today."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.repository import Repository
from tests.conftest import ROOT

MODELS = ROOT / "models"
SHIPPED = sorted(p.name for p in MODELS.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))
MB = 2**20


def bars(family: str, metrics: dict) -> None:
    plain, nice = metrics["plain"], metrics.get("nice")
    if family == "quadratic":
        assert plain["mean_abs_residual"] <= 0.005 and plain["p95_abs_residual"] <= 0.02
        assert plain["x_bins_covered"] >= 18
    elif family == "curves":
        assert plain["rms_residual"] <= 0.02 and plain["ks_uniform"] <= 0.1
    elif family == "curves-cgan":
        assert plain["requested_side"] >= 0.97
    elif family == "mnist-cgan":
        assert plain["label_accuracy"] >= 0.98 and plain["labels_covered"] == 10
        assert nice["label_accuracy"] >= plain["label_accuracy"]
    elif family in ("mnist-dcgan", "mnist-mlp"):
        assert 0.05 <= plain["min_class_share"] and plain["max_class_share"] <= 0.15
        assert plain["frechet_ratio"] <= 10
        assert nice["precision"] > plain["precision"] and nice["mean_confidence"] > plain["mean_confidence"]
    else:
        pytest.fail(f"no bar written for family {family}")


@pytest.fixture(scope="module")
def repository() -> Repository:
    repo = Repository([MODELS])
    repo.refresh()
    return repo


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_meets_its_bar_and_its_card(repository, name):
    from training.evaluate import evaluate

    model = repository.get(name)
    card = json.loads((model.path / "card.json").read_text())
    measured = evaluate(model)
    bars(card["family"], measured)
    for mode in ("plain", "nice"):
        for key, value in card["metrics"].get(mode, {}).items():
            if isinstance(value, float):
                assert measured[mode][key] == pytest.approx(value, rel=1e-3, abs=1e-6), f"{mode}.{key}"
    size = sum(f.stat().st_size for f in Path(model.path).glob("*.onnx"))
    assert size <= 10 * MB
