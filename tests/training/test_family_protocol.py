"""The family protocol (training/families/base.py): every registered family honours it, a family that does
not is refused at registration by name, and training asks the family instead of probing it."""
from __future__ import annotations

import ast
import dataclasses

import numpy as np
import pytest
import torch

from tests.utils import ROOT, TINY
from training.config import TrainConfig
from training.families import FAMILIES, quadratic
from training.families.base import OPTIMIZER_PARAMS, OptimizerConfig, SamplingFamily, TranslationFamily, register
from training.trainer import train


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_every_family_declares_every_required_member(name):
    family = FAMILIES[name]
    assert isinstance(family, (SamplingFamily, TranslationFamily)) and family.name == name
    assert not type(family).__abstractmethods__
    cfg = family.Config()  # defaults that work
    fields = {f.name for f in dataclasses.fields(cfg)}
    assert set(OPTIMIZER_PARAMS) <= fields
    G, D = family.Generator(cfg), family.Discriminator(cfg)
    assert isinstance(G, torch.nn.Module) and isinstance(D, torch.nn.Module)
    assert family.description.startswith(name + ":")  # the file's docstring: cards and the catalog show it
    assert family.DEFAULT_STEPS > 0 and all(op in ("<=", ">=") for _, op, _ in family.GATE)


def test_a_family_without_a_required_member_is_refused_at_registration_by_name():
    class NoGate(SamplingFamily):
        name = "no-gate"
        KIND = "points"
        LABELS = None
        DEFAULT_STEPS = 10
        Config, Generator, Discriminator = quadratic.Config, quadratic.Generator, quadratic.Discriminator
        real_batches = quadratic.Quadratic.real_batches
        card = quadratic.Quadratic.card

    with pytest.raises(TypeError, match=r"family NoGate .* lacks required members \['GATE'\]"):
        register(NoGate)


def test_a_translation_family_must_say_how_it_trains_and_exports():
    class Bare(TranslationFamily):
        name = "bare"
        DEFAULT_STEPS = 10
        GATE = []
        Config, Generator, Discriminator = quadratic.Config, quadratic.Generator, quadratic.Discriminator
        real_batches = quadratic.Quadratic.real_batches

    with pytest.raises(TypeError, match=r"\['card', 'evaluate', 'networks', 'snapshot', 'train_step'\]"):
        register(Bare)


def test_a_config_without_the_optimiser_config_is_refused_by_field():
    fields = {f.name: f for f in dataclasses.fields(quadratic.Config) if f.name != "beta1"}
    Lacking = dataclasses.make_dataclass("Lacking", [(n, f.type, f) for n, f in fields.items()])

    class Odd(quadratic.Quadratic):
        name = "odd"
        Config = Lacking

    with pytest.raises(TypeError, match=r"family 'odd': Config lacks \['beta1'\]"):
        register(Odd)
    with pytest.raises(TypeError, match="the name 'quadratic' is taken"):
        register(quadratic.Quadratic, quadratic.Quadratic)


def test_every_family_trains_with_its_shipped_optimiser_defaults():
    """One optimiser config for all; each family's defaults are those it has always trained with."""
    betas = {name: OptimizerConfig.of(family.Config()).betas for name, family in FAMILIES.items()}
    assert betas == {name: (0.9 if name == "quadratic" else 0.5, 0.999) for name in FAMILIES}
    refine = {name: family.d_refine(family.Config()) for name, family in FAMILIES.items()}
    assert refine == {"mnist-dcgan": 1000, "mnist-cgan": 300, **{n: 0 for n in FAMILIES if n not in
                                                                  ("mnist-dcgan", "mnist-cgan")}}


class LeastSquares(quadratic.Quadratic):
    """A toy family: the quadratic with a least-squares D, refined after training."""
    name = "toy-least-squares"
    seen: list[float]

    def __init__(self):
        self.seen = []

    def d_refine(self, cfg) -> int:
        return 2

    def discriminator_loss(self, d_real, d_fake, real_target):
        self.seen.append(real_target)
        return ((d_real - real_target) ** 2).mean() + (d_fake**2).mean()


def test_refining_the_discriminator_uses_the_familys_own_loss(monkeypatch):
    family = register(LeastSquares)["toy-least-squares"]
    monkeypatch.setitem(FAMILIES, family.name, family)
    params = {**TINY["quadratic"], "label_smoothing": 0.9}
    checkpoint = train(TrainConfig(family=family.name, steps=3, params=params, seed=0))
    assert family.seen == [0.9] * 3 + [1.0] * 2  # three training steps (smoothed), two refining steps (not)
    assert np.isfinite(checkpoint.history[-1]["loss_d"])


def calls(path) -> set[str]:
    return {node.func.id for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}


def test_training_never_probes_a_family_or_config_for_members():
    probing = {str(p.relative_to(ROOT)): sorted(calls(p) & {"hasattr", "getattr"})
               for p in sorted((ROOT / "training").rglob("*.py"))}
    assert {path: names for path, names in probing.items() if names} == {}

