"""Generator speed in-process with onnxruntime: the shipped mnist-dcgan against the keras-dcgan reference shape.

    .venv/bin/python benchmarks/generator_speed.py [--model models/mnist-dcgan/1] [--batch 64] [--threads 1]

The reference (z 100 → Dense 1024 tanh → Dense 128·7·7 BN tanh → up ×2 → conv 5×5 64 tanh → up ×2 →
conv 5×5 1 tanh, 96 MFLOP per image) is built untrained in torch and exported to ONNX here: its speed
does not depend on its weights. Both run in one process, with the service's session options, in
alternating rounds, so both see the same machine load. Prints images/s for each and the ratio.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from service.repository import Card, session_options


class KerasDcganGenerator(nn.Module):
    """The classic keras-dcgan generator shape."""

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


def conv_flops(module: nn.Module, z: torch.Tensor) -> float:
    """Multiply-adds ×2 of the Linear and Conv layers for one image."""
    total = 0

    def hook(layer, inputs, output):
        nonlocal total
        if isinstance(layer, nn.Linear):
            total += layer.in_features * layer.out_features
        elif isinstance(layer, nn.Conv2d):
            total += output[0].numel() * layer.in_channels * layer.kernel_size[0] * layer.kernel_size[1] // layer.groups
        elif isinstance(layer, nn.ConvTranspose2d):
            total += inputs[0][0].numel() * layer.out_channels * layer.kernel_size[0] * layer.kernel_size[1]

    handles = [m.register_forward_hook(hook) for m in module.modules() if not list(m.children())]
    with torch.no_grad():
        module(z[:1])
    for h in handles:
        h.remove()
    return 2.0 * total


def export_reference(path: Path) -> float:
    """Write the reference generator to ONNX; returns its FLOPs per image."""
    model = KerasDcganGenerator().eval()
    z = torch.rand(2, 100) * 2 - 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (z,), str(path), input_names=["z"], output_names=["sample"], opset_version=17,
                          dynamic_axes={"z": {0: "n"}, "sample": {0: "n"}}, dynamo=False)
    return conv_flops(model, z)


def images_per_second(session: ort.InferenceSession, z: np.ndarray, seconds: float) -> float:
    session.run(None, {"z": z})  # warm-up
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        session.run(None, {"z": z})
        count += len(z)
    return count / (time.perf_counter() - start)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("models/mnist-dcgan/1"))
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads for both")
    parser.add_argument("--seconds", type=float, default=2.0, help="per round per model")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    card = Card.load(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        reference_flops = export_reference(Path(tmp) / "reference.onnx")
        options = session_options(args.threads)
        providers = ["CPUExecutionProvider"]
        sessions = {"reference": ort.InferenceSession(str(Path(tmp) / "reference.onnx"), options, providers=providers),
                    "shipped": ort.InferenceSession(str(args.model / "generator.onnx"), options, providers=providers)}
        dims = {"reference": 100, "shipped": card.latent.dim}
        rng = np.random.default_rng(0)
        speeds = {name: [] for name in sessions}
        for _ in range(args.rounds):  # alternate, so both see the same background load
            for name, session in sessions.items():
                z = rng.uniform(-1, 1, (args.batch, dims[name])).astype(np.float32)
                speeds[name].append(images_per_second(session, z, args.seconds))
    best = {name: max(values) for name, values in speeds.items()}
    result = {"batch": args.batch, "threads": args.threads, "reference_mflop_per_image": reference_flops / 1e6,
              "reference_images_per_s": round(best["reference"]), "shipped_images_per_s": round(best["shipped"]),
              "shipped_model": str(args.model), "ratio": round(best["shipped"] / best["reference"], 2)}
    return result


if __name__ == "__main__":
    out = main()
    print(json.dumps(out, indent=2))
