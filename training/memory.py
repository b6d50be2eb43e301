"""The bytes a job costs: each family's base (what it holds before its networks and data count: python, torch,
onnxruntime, its evaluators), and the bytes per weight, per activation and per image float its Memory declares
(base.Memory). `ganserve catalog` writes them into catalog.json for the API's estimate (service/jobs/memory.py).

The bases are measured: `python -m benchmarks.job_memory` runs every family at its tiny test config, a few steps and
an evaluated export in a fresh process, and writes each peak (resident and data segment, the larger counts) to
assets/job-memory.json. The per-unit bytes are rounded up from its larger cases (benchmarks/job_memory.md has the
table), so the estimate errs high: a job refused at submission could perhaps have run, one accepted should not overrun.
"""
from __future__ import annotations

import functools
import json
import math
from pathlib import Path

MB = 2**20
MEASURED = Path(__file__).with_name("assets") / "job-memory.json"
BASE_BYTES = 1600 * MB  # a family not measured yet: more than any measured one
BASE_MARGIN = 1.15  # over the measured peak, rounded up to 50 MB
WEIGHT_BYTES = 40  # per weight: fp32 weights, gradients, two Adam moments, the EMA copy, ONNX export and its check
ACTIVATION_BYTES = 3  # per module output counted over a whole step (G twice, D three times): not all are held at
# once, so a count costs less than its fp32 value and gradient; measured 1.5-1.6 bytes (benchmarks/job_memory.md)
IMAGE_FLOAT_BYTES = 12  # per float of a training image: read, fitted to the size and split, as float32 copies
# per float of one image: what the export's evaluation holds (samples of every mode, nice's candidates, the held-out
# split, features), whatever the data's size: measured 272,000 on rgb-dcgan at 64 px (benchmarks/job_memory.md)
EVALUATION_BYTES = 350_000


@functools.lru_cache
def bases() -> dict[str, int]:
    """Each measured family's base in bytes."""
    measured = json.loads(MEASURED.read_text())["bases"] if MEASURED.exists() else {}
    step = 50 * MB
    return {name: math.ceil(max(row["peak_rss"], row["peak_data"]) * BASE_MARGIN / step) * step
            for name, row in measured.items()}


def catalog_entry(family) -> dict:
    """A family's memory in the catalog: its expressions and the bytes each of their units costs."""
    declared = family.memory()
    return {"weights": declared.weights, "activations": declared.activations, "image": declared.image,
            "base_bytes": bases().get(family.name, BASE_BYTES), "weight_bytes": WEIGHT_BYTES,
            "activation_bytes": ACTIVATION_BYTES, "image_float_bytes": IMAGE_FLOAT_BYTES,
            "evaluation_bytes": EVALUATION_BYTES}
