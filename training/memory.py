"""The bytes a job costs per weight and per activation its family declares (base.Memory), and what every job costs
before its first weight: written into catalog.json for the API's estimate (service/jobs/memory.py).

Measured with `python -m benchmarks.job_memory` (a few steps and an evaluated export, each in a fresh process, on
2 CPU cores, torch 2.13 CPU): see docs/limits.md for the table. Each constant is rounded up from the largest
per-case ratio so the estimate errs high: a job refused at submission could have run, never the other way round.
"""
from __future__ import annotations

MB = 2**20
BASE_BYTES = 1200 * MB  # python, torch, onnxruntime, the data and the evaluators, with no network at all
WEIGHT_BYTES = 40  # per weight: fp32 weights, gradients, two Adam moments, the EMA copy, ONNX export and its check
ACTIVATION_BYTES = 12  # per activation kept for backward: fp32 forward value, its gradient, autograd's copies
IMAGE_FLOAT_BYTES = 12  # per float of a training image: read, fitted to the size and split, as float32 copies


def catalog_entry(family) -> dict:
    """A family's memory in the catalog: its expressions and the bytes each of their units costs."""
    declared = family.memory()
    return {"weights": declared.weights, "activations": declared.activations, "image": declared.image,
            "base_bytes": BASE_BYTES, "weight_bytes": WEIGHT_BYTES, "activation_bytes": ACTIVATION_BYTES,
            "image_float_bytes": IMAGE_FLOAT_BYTES}
