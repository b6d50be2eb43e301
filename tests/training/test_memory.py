"""Each family's declared Memory (base.Memory, carried by the catalog to the API's estimate) bounds its real networks:
at least the weights G and D hold, and at least the activations every module outputs in one training step."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from service.jobs import memory
from tests.utils import TINY
from training.config import TrainConfig, family_params
from training.families import FAMILIES
from training.trainer import build

DATA = {"rgb-dcgan": "mnist", "image-cgan": "mnist"}  # families without data of their own
EXPLICIT = {"image-cgan": {"classes": 10}}  # classes 0 (the data's) is declared as the most an upload may have
LARGER = {  # wider networks and more samples than TINY, still quick
    "quadratic": {"g_hidden": 40, "d_hidden": 24, "batch_size": 16, "g_batch_size": 32},
    "curves": {"hidden": 48, "batch_size": 8},
    "curves-cgan": {"hidden": 48, "batch_size": 8},
    "mnist-mlp": {"g_hidden": 32, "d_hidden": 24, "batch_size": 4, "codes": 4},
    "mnist-dcgan": {"g_channels": 16, "d_channels": 8, "batch_size": 4, "codes": 4},
    "mnist-cgan": {"g_channels": 16, "d_channels": 8, "batch_size": 4, "aux": 1.0},
    "rgb-dcgan": {"image_size": 28, "channels": 1, "g_channels": 16, "batch_size": 4,
                  "diffaugment": "color,translation,cutout"},
    "image-cgan": {"image_size": 32, "classes": 10, "g_channels": 16, "batch_size": 4},
    "digits-cyclegan": {"g_channels": 8, "blocks": 2, "d_channels": 8, "whole": 1.0, "batch_size": 2},
}


def counted(family_name: str, params: dict) -> tuple[int, int]:
    """(weights, module outputs in one training step) of the family's real networks."""
    config = TrainConfig(family=family_name, params=params, data=DATA.get(family_name, "default"))
    family, cfg, G, D = build(config)
    outputs = [0]

    def count(module, inputs, output):
        if not list(module.children()):  # leaves only: a container's output is its last leaf's
            outputs[0] += sum(t.numel() for t in (output if isinstance(output, tuple) else (output,)))
    hooks = [m.register_forward_hook(count) for net in (G, D) for m in net.modules()]
    opt_g, opt_d = family.optimizers(cfg, G, D)
    batch = next(iter(family.real_batches(cfg, config.data, np.random.default_rng(0))))
    family.train_step(cfg, G, D, opt_g, opt_d, batch, torch.Generator().manual_seed(0))
    for hook in hooks:
        hook.remove()
    return sum(p.numel() for net in (G, D) for p in net.parameters()), outputs[0]


@pytest.mark.parametrize("name", sorted(FAMILIES))
@pytest.mark.parametrize("size", ["tiny", "larger"])
def test_declared_memory_bounds_the_real_networks(name, size):
    params = {**TINY[name], **EXPLICIT.get(name, {}), **(LARGER[name] if size == "larger" else {})}
    declared = FAMILIES[name].memory()
    values = {field: spec["default"] for field, spec in family_params(FAMILIES[name].Config).items()} | params
    weights, activations = counted(name, params)
    assert weights <= memory.evaluate(declared.weights, values) <= 4 * weights + 20_000
    assert activations <= memory.evaluate(declared.activations, values)


def test_the_api_counts_the_images_of_the_built_in_sources():
    from service.jobs.submit import BUILT_IN
    from training import data

    for name in BUILT_IN:
        split = data.BUILT_IN[name]()
        assert BUILT_IN[name] == len(split["train_x"]) + len(split["test_x"])
