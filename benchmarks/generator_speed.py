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
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from benchmarks.reference import KerasDcganGenerator, flops, to_onnx
from service.repository import Card, session_options


def export_generator(path: Path) -> float:
    """Write the reference generator to ONNX; returns its FLOPs per image."""
    model = KerasDcganGenerator().eval()
    z = torch.rand(2, 100) * 2 - 1
    to_onnx(model, z, path, "z", "sample")
    return flops(model, z)


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
        reference_flops = export_generator(Path(tmp) / "reference.onnx")
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
