"""Latent control without HTTP: truncation, explicit latents, walks; each a pure function of the request."""
from __future__ import annotations

import numpy as np
import pytest

from service import sampling
from service.repository import load
from service.sampling import SamplingError, steering
from service.sampling.latents import truncate
from service.sampling.steering import Steering, Walk


@pytest.fixture(scope="module")
def models(serving_repository):
    return {path.parent.name: load(path.parent.name, 1, path) for path in serving_repository.glob("*/1")}


def run(model, n, steer, seed=3, mode="plain", labels=None, start=0):
    return sampling.run(steering.plan(model, n, seed, mode, 5, labels, steer, start))


def test_truncation_scales_toward_the_mean_and_keeps_the_cluster_coordinate():
    z = sampling.latents(7, 0, 200, 6, "uniform")
    assert truncate(z, 1.0) is z
    np.testing.assert_array_equal(truncate(z, 0.5), z * np.float32(0.5))
    assert np.abs(truncate(z, 0.4)).max() <= 0.4  # a uniform range [-1, 1] becomes [-ψ, ψ]
    coded = truncate(z, 0.5, codes=20)
    np.testing.assert_array_equal(coded[:, 0], z[:, 0])
    np.testing.assert_array_equal(coded[:, 1:], z[:, 1:] * np.float32(0.5))


@pytest.mark.parametrize("mode", ["plain", "nice", "rejection"])
def test_truncation_is_deterministic_in_every_mode_and_one_is_off(models, mode):
    model = models["mnist-dcgan"]
    truncated = run(model, 6, Steering(0.5), mode=mode).values
    np.testing.assert_array_equal(run(model, 6, Steering(0.5), mode=mode).values, truncated)
    np.testing.assert_array_equal(run(model, 6, Steering(1.0), mode=mode).values,
                                  sampling.sample(model, 6, 3, mode, 5).values)
    assert not np.array_equal(truncated, run(model, 6, Steering(1.0), mode=mode).values)


def test_truncated_samples_depend_only_on_seed_and_index(models):
    model = models["mnist-dcgan"]
    whole = run(model, 10, Steering(0.7)).values
    np.testing.assert_array_equal(run(model, 4, Steering(0.7), start=6).values, whole[6:])


def test_truncation_out_of_range_names_the_field(models):
    with pytest.raises(SamplingError, match="^truncation:"):
        run(models["quadratic"], 2, Steering(0.0))


@pytest.mark.parametrize("method", ["slerp", "lerp"])
def test_interpolation_ends_are_exact(method):
    a, b = sampling.latents(1, 0, 2, 16, "normal")
    path = steering.interpolate(a, b, np.linspace(0, 1, 7), method)
    assert path.dtype == np.float32 and path.shape == (7, 16)
    np.testing.assert_array_equal(path[0], a)
    np.testing.assert_array_equal(path[-1], b)


def test_slerp_keeps_the_norm_of_equal_length_latents_where_lerp_shrinks_it():
    a, b = sampling.latents(1, 0, 2, 100, "normal")
    b = b / np.linalg.norm(b) * np.linalg.norm(a)
    middle = {m: np.linalg.norm(steering.interpolate(a, b, np.array([0.5]), m)[0]) for m in ("slerp", "lerp")}
    assert middle["slerp"] == pytest.approx(np.linalg.norm(a), rel=1e-4)
    assert middle["lerp"] < 0.8 * np.linalg.norm(a)  # nearly orthogonal in 100 dimensions


@pytest.mark.parametrize("name", ["quadratic", "mnist-dcgan", "mnist-cgan"])
def test_a_walk_starts_and_ends_at_the_two_seeds_sample_zero(models, name):
    model = models[name]
    labels = steering.walk_labels(model, 5)
    for psi in (1.0, 0.6):
        walk = run(model, 5, Steering(psi, walk=Walk(11, 12, 5)), labels=labels).values
        for end, seed in ((walk[0], 11), (walk[-1], 12)):
            first = sampling.run(steering.plan(model, 1, seed, "plain", 1, None if labels is None else labels[:1],
                                               Steering(psi)))
            np.testing.assert_array_equal(end, first.values[0])


def test_a_walk_in_chunks_equals_the_walk_at_once(models):
    model = models["mnist-dcgan"]
    steer = Steering(0.8, walk=Walk(1, 2, 9, "slerp"))
    whole = run(model, 9, steer).values
    parts = [run(model, 4, steer).values, run(model, 5, steer, start=4).values]
    np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_a_uniform_walk_stays_in_the_cube(models):
    model = models["mnist-dcgan"]
    assert model.card.latent.distribution == "uniform"
    z = steering.walk_latents(model, Walk(1, 2, 11, "slerp"), 1.0, 0, 11)
    assert np.abs(z).max() <= 1
    assert Walk(1, 2, 3).method_for("uniform") == "lerp" and Walk(1, 2, 3).method_for("normal") == "slerp"


def test_explicit_latents_equal_to_a_seeds_draw_give_its_samples(models):
    model = models["mnist-cgan"]
    z = sampling.latents(5, 0, 4, model.latent_dim, model.card.latent.distribution)
    labels = np.arange(4, dtype=np.int64)
    given = run(model, 4, Steering(latents=steering.check_latents(model, z.tolist())), seed=None, labels=labels)
    np.testing.assert_array_equal(given.values, sampling.sample(model, 4, 5, labels=labels).values)
    assert given.seed is None


@pytest.mark.parametrize("rows, message", [
    ([[0.0] * 3], "row 0 has 3"),
    ([[0.0] * 8, [0.0] * 7], "row 1 has 7"),
    ([[float("nan")] * 8], "not finite"),
    ([[1e39] * 8], "not finite"),
])
def test_bad_latents_name_the_field(models, rows, message):
    with pytest.raises(SamplingError, match=f"^latents: .*{message}"):
        steering.check_latents(models["mnist-dcgan"], rows)


def test_explicit_latents_and_walks_are_plain_only(models):
    with pytest.raises(SamplingError, match="^mode:"):
        run(models["quadratic"], 3, Steering(walk=Walk(1, 2, 3)), mode="nice")
