"""What a job really holds, against what the submit check estimates (training/memory.py's constants come from here).

Each case trains a few steps and exports with evaluation, as a worker's job does, in a fresh process; its peak
resident memory (ru_maxrss) and peak data segment (VmData, sampled every 20 ms: what the job's RLIMIT_DATA counts)
are printed beside the family's counted weights and activations and the estimate, and written to
training/assets/job-memory.json: each family's peak at its tiny test config is its base in the catalog, the larger
cases check the bytes per weight and per activation (`ganserve catalog` afterwards).

    .venv/bin/python -m benchmarks.job_memory            # ~15 min on 2 busy cores
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

BASES = {"rgb-dcgan": "mnist", "image-cgan": "mnist"}  # each family at its tiny test config: its data, if not its own
CASES = [  # (family, params, data): networks and batches large enough that their weights or activations show
    ("mnist-mlp", {"g_hidden": 1024, "d_hidden": 1024, "batch_size": 256, "codes": 0, "d_refine": 0}, "default"),
    ("mnist-dcgan", {"g_channels": 256, "d_channels": 64, "batch_size": 256, "codes": 0, "d_refine": 0}, "default"),
    ("rgb-dcgan", {"image_size": 64, "g_channels": 256, "d_channels": 64, "batch_size": 64}, "mnist"),
    ("rgb-dcgan", {}, "mnist"),  # 32 px: the evaluation's share at another size
    ("digits-cyclegan", {"g_channels": 32, "batch_size": 64}, "default"),
]
STEPS = 3
MEASURED = Path(__file__).resolve().parents[1] / "training" / "assets" / "job-memory.json"  # training/memory.py reads

CHILD = """
import json, sys, tempfile, pathlib
from training.config import TrainConfig
from training.export import export
from training.trainer import train
family, params, data, steps = json.loads(sys.argv[1])
config = TrainConfig(family=family, steps=steps, data=data, params=params, progress_every=1)
export(train(config), pathlib.Path(tempfile.mkdtemp()), evaluate=True)
"""


def vm_data(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmData:"))


def measure(family: str, params: dict, data: str) -> tuple[int, int]:
    """(peak RSS, peak VmData) in bytes of one job run in a child process."""
    child = subprocess.Popen([sys.executable, "-c", CHILD, json.dumps([family, params, data, STEPS])])
    peak, done = [0], threading.Event()

    def sample():
        while not done.is_set():
            try:
                peak[0] = max(peak[0], vm_data(child.pid))
            except (OSError, StopIteration):  # ended between two samples
                pass
            time.sleep(0.02)
    watcher = threading.Thread(target=sample)
    watcher.start()
    _, status, usage = os.wait4(child.pid, 0)  # this child's own peak, not the largest child's so far
    done.set()
    watcher.join()
    if status:
        raise RuntimeError(f"{family} {params}: wait status {status}")
    return usage.ru_maxrss * 1024, peak[0]


def main() -> None:
    from service.jobs import memory
    from tests.utils import TINY
    from training.catalog import build

    catalog = build()
    runs = [(family, TINY[family], BASES.get(family, "default"), "base") for family in sorted(catalog)]
    runs += [(family, params, data, "case") for family, params, data in CASES]
    print(f"{'family':16} {'params':60} {'weights':>11} {'activ.':>12} {'rss MB':>7} {'data MB':>8} {'est MB':>7}")
    out = {"steps": STEPS, "bases": {}, "cases": []}
    for family, params, data, role in runs:
        spec = catalog[family]
        values = {name: p["default"] for name, p in spec["params"].items()} | params
        weights = memory.evaluate(spec["memory"]["weights"], values)
        activations = memory.evaluate(spec["memory"]["activations"], values)
        rss, data_peak = measure(family, params, data)
        print(f"{family:16} {json.dumps(params)[:60]:60} {weights:11,.0f} {activations:12,.0f} {rss / 2**20:7.0f} "
              f"{data_peak / 2**20:8.0f} {memory.estimate(spec, params) / 2**20:7.0f}", flush=True)
        row = {"family": family, "params": params, "data": data, "weights": weights, "activations": activations,
               "peak_rss": rss, "peak_data": data_peak}
        if role == "base":
            out["bases"][family] = row
        else:
            out["cases"].append(row)
        MEASURED.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
