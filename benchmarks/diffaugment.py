"""DiffAugment on few digits: mnist-cgan trained on 500, 1,000 and 4,000 MNIST digits, with and without it.

Each run trains mnist-cgan on `mnist:N` (the first N/10 training digits of each class) for the same number of
steps and seed, exports it, and measures its plain samples (n 1,000, the evaluation seed) on evaluator A (the
one choices are made on) and evaluator B (reported, never chosen on: training/evaluate.py's protocol), both
against the 1,000 held-out digits no run sees. Arms:

  shift        the family's defaults: real and fake shifted by up to 2 pixels before D (its `augment`)
  diffaugment  DiffAugment's colour, translation (1/8 of the side) and cutout before D, instead of the shift
  translation-cutout  DiffAugment without colour
  none         no augmentation at all

One run per call (one torch thread), its record written to docs/experiments/diffaugment/; `--table` gathers the
records into docs/experiments/diffaugment.json and prints the markdown table:

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python -m benchmarks.diffaugment --size 500 --arm diffaugment
    .venv/bin/python -m benchmarks.diffaugment --table
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "experiments" / "diffaugment"
ARMS = {"shift": {}, "diffaugment": {"augment": 0, "diffaugment": "color,translation,cutout"},
        "translation-cutout": {"augment": 0, "diffaugment": "translation,cutout"}, "none": {"augment": 0}}
KEYS = ("label_accuracy", "frechet_ratio", "precision", "recall", "classes_covered")


def run(size: int, arm: str, steps: int, seed: int, ema: float | None = None) -> dict:
    """Train, export and measure one arm; its record."""
    import torch

    torch.set_num_threads(1)
    from service.repository import load
    from training import evaluate
    from training.config import TrainConfig
    from training.export import export
    from training.trainer import train

    params = {**ARMS[arm], **({"ema": ema} if ema is not None else {})}
    config = TrainConfig(family="mnist-cgan", steps=steps, data=f"mnist:{size}", params=params, seed=seed,
                         model=f"mnist-cgan-{size}-{arm}", progress_every=100)
    t0 = time.perf_counter()
    checkpoint = train(config)
    seconds = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        path = export(checkpoint, Path(tmp), evaluate=False)
        metrics = evaluate.per_mode(load(config.model_name, int(path.name), path), evaluate.DIGITS, modes=("plain",))
    a, b = metrics["plain"], metrics["evaluator_b"]["plain"]
    return {"size": size, "arm": arm, "steps": steps, "seed": seed, "params": params, "ema": ema,
            "train_seconds": round(seconds, 1), "last": checkpoint.history[-1],
            "A": {k: a[k] for k in KEYS}, "B": {k: b[k] for k in KEYS},
            "command": f"OMP_NUM_THREADS=1 python -m benchmarks.diffaugment --size {size} --arm {arm} "
                       f"--steps {steps} --seed {seed}" + (f" --ema {ema}" if ema is not None else "")}


def table(records: list[dict]) -> str:
    rows = ["| digits | arm | seed | steps | EMA | A label acc. | A Fréchet ratio | B label acc. | B Fréchet ratio | "
            "B precision | B recall | B ratio vs shift |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    key = lambda r: (r["size"], r["seed"], r["steps"], r.get("ema"))  # noqa: E731  arms compared at equal everything
    base = {key(r): r["B"]["frechet_ratio"] for r in records if r["arm"] == "shift"}
    for r in sorted(records, key=lambda r: (r["size"], r.get("ema") or 0.999, r["seed"], list(ARMS).index(r["arm"]))):
        ref = base.get(key(r))
        change = f"{r['B']['frechet_ratio'] / ref - 1:+.0%}" if ref and r["arm"] != "shift" else ""
        rows.append(f"| {r['size']} | {r['arm']} | {r['seed']} | {r['steps']} | {r.get('ema') or 0.999} | "
                    f"{r['A']['label_accuracy']:.3f} | "
                    f"{r['A']['frechet_ratio']:.2f} | {r['B']['label_accuracy']:.3f} | {r['B']['frechet_ratio']:.2f} "
                    f"| {r['B']['precision']:.3f} | {r['B']['recall']:.3f} | {change} |")
    return "\n".join(rows)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, choices=(500, 1000, 4000))
    parser.add_argument("--arm", choices=tuple(ARMS))
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ema", type=float, help="G's EMA decay in every arm (default: the family's 0.999, which at "
                        "2,000 steps still serves a G that is a third its first 1,000 steps')")
    parser.add_argument("--table", action="store_true", help="gather the records into one JSON and a table")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    if args.table:
        records = [json.loads(p.read_text()) for p in sorted(OUT.glob("*.json"))]
        (OUT.parent / "diffaugment.json").write_text(json.dumps({"runs": records}, indent=2) + "\n")
        print(table(records))
        return
    record = run(args.size, args.arm, args.steps, args.seed, args.ema)
    OUT.mkdir(parents=True, exist_ok=True)
    ema = "" if args.ema is None else f"-ema{args.ema:g}"
    (OUT / f"{args.size}-{args.arm}-s{args.seed}-{args.steps}{ema}.json").write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps({k: record[k] for k in ("size", "arm", "A", "B", "train_seconds")}))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
