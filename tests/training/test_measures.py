"""The data-relative measures: a fixed split, distances that need no downloaded weights, ratios over real images;
they tell real digits from blurred, collapsed and noisy ones. numpy and onnxruntime only (no torch)."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

from training import data, measures
from training.evaluate import DATA_GATE


@pytest.fixture(scope="module")
def mnist():
    split = data.load_split("mnist")
    reference = measures.Reference(split.test_x, None, split.train_x[:500], None)
    return split, reference


def test_the_split_is_seeded_stratified_and_disjoint():
    labels = np.arange(103) % 7
    train, held = data.split_indices(103, labels)
    again_train, again_held = data.split_indices(103, labels)
    assert np.array_equal(train, again_train) and np.array_equal(held, again_held)
    assert not set(train) & set(held) and len(train) + len(held) == 103
    assert np.bincount(labels[held], minlength=7).tolist() == [3] * 7  # 20 % of each class's 14-15
    assert len(data.split_indices(10_000, None)[1]) == data.MAX_HELD_OUT


def test_a_class_is_never_held_out_whole():
    train, held = data.split_indices(5, np.array([0, 1, 1, 1, 1]))
    assert 0 in set(np.array([0, 1, 1, 1, 1])[train])


def test_a_file_source_trains_on_its_training_part_only(tmp_path):
    x = np.arange(50, dtype=np.uint8)[:, None, None].repeat(8, 1).repeat(8, 2)  # image i is all i
    path = tmp_path / "d.npz"
    np.savez(path, x=x, y=np.arange(50) % 2)
    split = data.load_split(str(path), size=8, channels=1)
    trained, _ = data.training_images(str(path), size=8, channels=1)
    seen = {float(v) for v in trained[:, 0, 0, 0]}
    held = {float(v) for v in split.test_x[:, 0, 0, 0]}
    assert len(held) == 10 and not seen & held and split.info["stratified"]


def test_mnist_n_names_the_first_digits_of_each_class_against_the_same_held_out():
    small = data.load_split("mnist:500")
    assert np.bincount(small.train_y).tolist() == [50] * 10 and len(small.test_y) == 1000
    assert data.is_mnist("mnist:500") and data.is_mnist("default") and not data.is_mnist("uci")
    with pytest.raises(ValueError, match="mnist:N takes N from 10 to 4000"):
        data.load_split("mnist:5")


def test_the_random_network_is_the_same_on_every_machine():
    # numpy's seeded generator fixes the weights: the graph's bytes are pinned.
    digest = hashlib.sha256(measures.random_network(3)).hexdigest()
    assert digest == hashlib.sha256(measures.random_network(3)).hexdigest()
    features = measures.random_features(np.zeros((2, 3, 32, 32), np.float32))
    assert features.shape == (2, 256) and np.allclose(features[0], features[1])


def test_swd_of_a_set_with_itself_is_zero_and_grows_with_blur(mnist):
    split, _ = mnist
    real = split.train_x[:300]
    assert measures.swd(real, real) == 0
    assert measures.swd(measures._blur(real), split.test_x[:300]) > 5 * measures.swd(split.train_x[300:600],
                                                                                         split.test_x[:300])


def test_the_pyramid_adds_back_to_the_image():
    x = np.random.default_rng(0).uniform(-1, 1, (2, 3, 32, 32)).astype(np.float32)
    levels = measures.laplacian_pyramid(x)
    assert [lv.shape[2] for lv in levels] == [32, 16, 8]
    rebuilt = levels[-1]
    for detail in reversed(levels[:-1]):
        rebuilt = detail + measures._up(rebuilt, detail.shape[2:])
    assert np.allclose(rebuilt, x, atol=1e-5)


def test_kid_is_unbiased_near_zero_for_one_distribution():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(400, 16)), rng.normal(size=(400, 16))
    assert abs(measures.kid(a, b)) < 0.05 * measures.kid(a, b + 0.5)


@pytest.mark.parametrize("name", ["blurred", "collapsed", "noise"])
def test_real_digits_sit_near_ratio_one_and_bad_ones_far(mnist, name):
    split, reference = mnist
    real = split.train_x[500:1000]
    bad = {"blurred": measures._blur(measures._blur(real)), "collapsed": np.repeat(real[:1], 500, 0),
           "noise": np.random.default_rng(0).uniform(-1, 1, real.shape).astype(np.float32)}[name]
    good, worse = reference.measure(real), reference.measure(bad)
    assert good["swd_ratio"] < 1.5 and good["frechet_random_ratio"] < 1.5
    gate = dict((metric.split(".")[1], limit) for metric, _, limit in DATA_GATE)
    assert worse["swd_ratio"] > gate["swd_ratio"] or worse["frechet_random_ratio"] > gate["frechet_random_ratio"]
    assert worse["frechet_random_ratio"] > 8 * good["frechet_random_ratio"] and worse["swd_ratio"] > 4 * good["swd_ratio"]
    assert worse["kid_random"] > 20 * abs(good["kid_random_real"])
