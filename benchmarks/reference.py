"""The keras-dcgan reference model (the architecture the mnist-dcgan card names as its `reference`),
with random weights, exported as a servable model version: the benchmarks' heavy model.

    python benchmarks/reference.py OUT_FOLDER      # writes OUT_FOLDER/keras-dcgan/1/{card.json, *.onnx}

G: z 100 (uniform −1..1) → Dense 1024 tanh → Dense 128·7·7 BN tanh → up ×2 → conv 5×5 64 tanh → up ×2 →
conv 5×5 1 tanh (96 MFLOP per image). D: conv 5×5 64 tanh → pool → conv 5×5 128 tanh → pool → Dense 1024
tanh → 1 (the logit; keras-dcgan's sigmoid is left out, as every served D gives a logit). Speed does not
depend on the weights, so none are trained.
"""
from __future__ import annotations

import sys
import warnings
from pathlib import Path

import torch
from torch import nn

from service.repository import Card

NAME = "keras-dcgan"


class KerasDcganGenerator(nn.Module):
    def __init__(self):
        super().__init__()
        self.dense = nn.Sequential(nn.Linear(100, 1024), nn.Tanh(), nn.Linear(1024, 128 * 7 * 7),
                                   nn.BatchNorm1d(128 * 7 * 7), nn.Tanh())
        self.conv = nn.Sequential(
            nn.Upsample(scale_factor=2), nn.Conv2d(128, 64, 5, padding=2), nn.Tanh(),  # (n, 64, 14, 14)
            nn.Upsample(scale_factor=2), nn.Conv2d(64, 1, 5, padding=2), nn.Tanh(),  # (n, 1, 28, 28)
        )

    def forward(self, z):
        return self.conv(self.dense(z).view(-1, 128, 7, 7))


class KerasDcganDiscriminator(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 64, 5, padding=2), nn.Tanh(), nn.MaxPool2d(2),  # (n, 64, 14, 14)
            nn.Conv2d(64, 128, 5), nn.Tanh(), nn.MaxPool2d(2),  # (n, 128, 5, 5)
            nn.Flatten(), nn.Linear(128 * 5 * 5, 1024), nn.Tanh(), nn.Linear(1024, 1))

    def forward(self, sample):
        return self.net(sample).reshape(-1)


def flops(module: nn.Module, x: torch.Tensor) -> float:
    """Multiply-adds ×2 of the Linear and Conv layers for one input row."""
    total = 0

    def hook(layer, inputs, output):
        nonlocal total
        if isinstance(layer, nn.Linear):
            total += layer.in_features * layer.out_features
        elif isinstance(layer, nn.Conv2d):
            total += output[0].numel() * layer.in_channels * layer.kernel_size[0] * layer.kernel_size[1] // layer.groups

    handles = [m.register_forward_hook(hook) for m in module.modules() if not list(m.children())]
    with torch.no_grad():
        module(x[:1])
    for h in handles:
        h.remove()
    return 2.0 * total


def to_onnx(module: nn.Module, example: torch.Tensor, path: Path, input_name: str, output_name: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (example,), str(path), input_names=[input_name], output_names=[output_name],
                          opset_version=17, dynamic_axes={input_name: {0: "n"}, output_name: {0: "n"}}, dynamo=False)


def export_reference(folder: Path, seed: int = 0) -> Path:
    """Write folder/keras-dcgan/1 (G, D and a card); returns the version folder."""
    torch.manual_seed(seed)
    version = folder / NAME / "1"
    version.mkdir(parents=True, exist_ok=True)
    g, d = KerasDcganGenerator().eval(), KerasDcganDiscriminator().eval()
    z = torch.rand(2, 100) * 2 - 1
    to_onnx(g, z, version / "generator.onnx", "z", "sample")
    with torch.no_grad():
        sample = g(z)
    to_onnx(d, sample, version / "discriminator.onnx", "sample", "score")
    Card(name=NAME, family="benchmark", kind="image", latent={"dim": 100, "distribution": "uniform"},
         sample_shape=[1, 28, 28], version=1,
         description="keras-dcgan's architecture with random weights: the benchmarks' heavy model, never trained",
         metrics={"g_mflop_per_image": round(flops(g, z) / 1e6, 1),
                  "d_mflop_per_image": round(flops(d, sample) / 1e6, 1)}).save(version)
    return version


if __name__ == "__main__":
    print(export_reference(Path(sys.argv[1])))
