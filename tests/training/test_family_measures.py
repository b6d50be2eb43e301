"""The families' own measures and pictures: the quadratic's tell points on y = x² from points off it, and even
x from bunched x; the curves' tell real curves from collapsed and noisy ones; each draws its truth in its card.
A model whose family training does not know is measured by its kind only."""
import json
import shutil

import numpy as np
import pytest

from service.repository import load
from tests.utils import ROOT
from training import evaluate
from training.families import FAMILIES
from training.families.parts import curve_measures
from training.families.quadratic import points


def on_curve(x):
    return np.stack([x, x * x], axis=1)


def test_points_on_the_curve_spread_over_the_range_pass_the_bars():
    x = np.random.default_rng(0).uniform(-0.5, 0.5, 1000)
    m = points(on_curve(x))
    assert m["mean_abs_residual"] < 1e-9 and m["p95_abs_residual"] < 1e-9
    assert m["x_bins_covered"] == 20 and m["x_outside_range"] == 0


def test_points_off_the_curve_fail_the_residual_bars():
    rng = np.random.default_rng(1)
    noisy = on_curve(rng.uniform(-0.5, 0.5, 1000)) + [0, 0.05] * rng.standard_normal((1000, 2))
    m = points(noisy)
    assert m["mean_abs_residual"] > 0.02 and m["p95_abs_residual"] > 0.05


def test_points_bunched_in_x_fail_the_coverage_bar():
    x = np.random.default_rng(2).uniform(0.1, 0.2, 1000)  # on the curve, but only two of 20 bins
    m = points(on_curve(x))
    assert m["mean_abs_residual"] < 1e-9 and m["x_bins_covered"] <= 3


def test_curves_measures_real_and_wrong():
    rng = np.random.default_rng(0)
    x = np.linspace(-1, 1, 15)
    a = rng.uniform(1, 2, 1000)
    real = a[:, None] * x**2 + (a - 1)[:, None]
    good = curve_measures(real, (a > 1.5).astype(np.int64))
    assert good["rms_residual"] < 1e-9 and good["a_in_range"] == 1 and good["ks_uniform"] < 0.05
    assert good["requested_side"] == 1
    collapsed = curve_measures(np.repeat(real[:1], 1000, axis=0))
    assert collapsed["ks_uniform"] > 0.3
    noisy = curve_measures(real + rng.normal(0, 0.1, real.shape), 1 - (a > 1.5).astype(np.int64))
    assert noisy["rms_residual"] > 0.05 and noisy["requested_side"] < 0.1


def test_the_quadratic_card_draws_the_parabola_behind_its_points():
    family = FAMILIES["quadratic"]
    picture = family.card(family.Config())["picture"]
    (line,) = picture["lines"]
    xy = np.array(line["points"])  # (101, 2)
    assert picture["x"] is None and line["width"] == 3
    np.testing.assert_allclose(xy[:, 1], xy[:, 0] ** 2, atol=1e-6)
    assert (xy[0, 0], xy[-1, 0]) == (-0.5, 0.5)
    (x_lo, x_hi), (y_lo, y_hi) = picture["x_range"], picture["y_range"]
    assert x_lo < -0.5 and 0.5 < x_hi and y_lo < 0 and 0.25 < y_hi


@pytest.mark.parametrize("name, bounds", [("curves", [(1.0, 3), (2.0, 3)]),
                                          ("curves-cgan", [(1.0, 3), (2.0, 3), (1.5, 1)])])
def test_a_curve_card_draws_the_bounds_of_the_real_curves(name, bounds):
    family = FAMILIES[name]
    card = family.card(family.Config())
    picture = card["picture"]
    x = np.array(picture["x"])
    assert x.shape == tuple(card["sample_shape"]) and (x[0], x[-1]) == (-1, 1)
    assert [line["width"] for line in picture["lines"]] == [width for _, width in bounds]
    for line, (a, _) in zip(picture["lines"], bounds):
        xy = np.array(line["points"])
        np.testing.assert_allclose(xy[:, 0], x, atol=1e-6)
        np.testing.assert_allclose(xy[:, 1], a * x * x + (a - 1), atol=1e-5)  # rounded to 6 places
    assert picture["y_range"][0] <= 0 and 3 <= picture["y_range"][1]  # a in [1, 2]: y from 0 to 3


def shipped_as(name: str, family: str, tmp_path):
    """A shipped model's latest version, copied, with its card naming another family (as an imported model's)."""
    source = max((ROOT / "models" / name).iterdir(), key=lambda p: int(p.name))
    folder = tmp_path / name / source.name
    shutil.copytree(source, folder)
    card = json.loads((folder / "card.json").read_text())
    (folder / "card.json").write_text(json.dumps({**card, "family": family}))
    return load(name, int(source.name), folder)


def test_a_model_is_measured_by_its_family_and_one_of_an_unknown_family_by_its_kind(tmp_path):
    known = evaluate.evaluate(shipped_as("quadratic", "quadratic", tmp_path / "known"), n=200, modes=("plain",))
    assert {"mean_abs_residual", "x_bins_covered"} <= set(known["plain"])
    unknown = evaluate.evaluate(shipped_as("quadratic", "imported", tmp_path / "unknown"), n=200, modes=("plain",))
    assert {"mean", "std", "sample_diversity"} <= set(unknown["plain"]) and "mean_abs_residual" not in unknown["plain"]
    assert len(unknown["plain"]["mean"]) == 2  # x and y


def test_digit_measures_and_truncation_belong_to_the_digit_families(tmp_path):
    digits = shipped_as("mnist-dcgan", "mnist-dcgan", tmp_path / "known")
    measures = evaluate.measures_of(digits.card)  # on the built-in MNIST: evaluator A and B, and the data's own
    assert measures.second is evaluate.DIGITS.second and measures.truncation
    imported = shipped_as("mnist-dcgan", "someone-elses-letters", tmp_path / "unknown")
    assert evaluate.measures_of(imported.card) is evaluate.GENERIC["image"]
    assert evaluate.truncation_effect(imported, n=50) is None
    metrics = evaluate.evaluate(imported, n=100, modes=("plain",))
    assert "pixel_mean" in metrics["plain"] and "classes_covered" not in metrics["plain"]
    assert "evaluator_b" not in metrics  # nor judged as a digit by evaluator B
