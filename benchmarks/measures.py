"""Do the data-relative measures tell good samples from bad? Five sets per dataset, measured against its held-out split.

  real       real images the baseline did not use (MNIST: training digits 1,001-2,000; the made datasets: a fresh
             draw of the same recipe, another seed)
  blurred    the same real images through the pyramid's 5×5 binomial blur, twice
  trained    the trained generator's samples (MNIST: the shipped mnist-cgan's default version, as served)
  early      the same run's config trained for a few steps only (its early snapshot)
  collapsed  a collapsed run: the same G trained against a frozen D (no D steps), which pulls every latent to the
             one image that D likes best: the collapse a GAN falls into when D stops teaching

Datasets: mnist (the built-in split; the digit evaluator A too), patterns (32×32 RGB, six labelled classes,
tests/datasets.py: the labels train the measures' classifier, the GAN is unconditional) and shapes (28×28 grey,
four classes, saved without labels).

    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.measures --dataset patterns   # a few minutes each
    .venv/bin/python -m benchmarks.measures --table   # docs/experiments/measures.json and the table
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
OUT = ROOT / "docs" / "experiments" / "measures"
SETS = ("real", "blurred", "trained", "early", "collapsed")
KEYS = ("swd_ratio", "frechet_random_ratio", "kid_random", "frechet_ratio", "precision", "recall", "label_accuracy")
# The made datasets' runs: family, params, steps; their early snapshot's steps.
RUNS = {  # EMA 0.99: at 0.999 the served G of a run this short is still half its first weights
    "patterns": ("rgb-dcgan", {"image_size": 32, "channels": 3, "g_channels": 64, "d_channels": 16,
                               "batch_size": 32, "latent_dim": 32, "ema": 0.99}, 1500, 100),
    "shapes": ("rgb-dcgan", {"image_size": 28, "channels": 1, "g_channels": 64, "d_channels": 16, "batch_size": 32,
                             "latent_dim": 32, "ema": 0.99}, 1500, 100),
    "mnist": ("mnist-cgan", {}, None, 200),
}


def made_data(name: str, folder: Path, n: int = 1500, seed: int = 0) -> tuple[Path, tuple[np.ndarray, np.ndarray]]:
    """A made dataset as a user's npz (shapes without labels), and a fresh draw of it in [-1, 1] (n/2, c, h, w)."""
    from tests.datasets import patterns, save_npz, shapes

    make = patterns if name == "patterns" else shapes
    x, y = make(n, seed)
    path = save_npz(folder / f"{name}.npz", x, y if name == "patterns" else None)
    fresh, labels = make(n // 2, seed + 1)
    fresh = fresh.transpose(0, 3, 1, 2) if fresh.ndim == 4 else fresh[:, None]
    return path, (fresh.astype(np.float32) / 127.5 - 1, labels)


def generated(G, family, cfg, n: int, seed: int = 1234) -> tuple[np.ndarray, np.ndarray | None]:
    """n samples of a torch G in eval mode (labels in turn for a conditional one)."""
    import torch

    from training.families.base import sample_latent

    names = family.labels(cfg)
    labels = torch.arange(n) % len(names) if names else None
    with torch.no_grad():
        values = family.generate(G.eval(), sample_latent(cfg, n, torch.Generator().manual_seed(seed)), labels)
    return values.numpy(), None if labels is None else labels.numpy()


def collapsed_run(config, steps: int):
    """G trained alone against the run's freshly built, frozen D: every latent is pulled to D's favourite image."""
    import torch

    from training.families.base import sample_latent
    from training.trainer import build

    family, cfg, G, D = build(config)
    D.eval()
    opt = torch.optim.Adam(G.parameters(), lr=cfg.lr, betas=(cfg.beta1, 0.999))
    gen = torch.Generator().manual_seed(config.seed)
    G.train()
    for _ in range(steps):
        z = sample_latent(cfg, cfg.batch_size, gen)
        labels = family.random_labels(cfg, cfg.batch_size, gen)
        fake = family.generate(G, z, labels)
        loss = family.generator_loss(D(fake, labels) if labels is not None else D(fake))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return family, cfg, G


def measure_dataset(name: str, steps: int | None = None, n: int = 1500) -> dict:
    """The five sets of a dataset measured against its held-out split (`steps`: the trained run's, if not RUNS')."""
    import torch

    torch.set_num_threads(1)
    from training import evaluate, measures
    from training.config import TrainConfig
    from training.data import load_split
    from training.trainer import train

    family_name, params, default_steps, early_steps = RUNS[name]
    steps = steps or default_steps
    folder = Path(tempfile.mkdtemp(prefix="ganserve-measures-"))
    t0 = time.perf_counter()
    if name == "mnist":
        source, split = "mnist", load_split("mnist")
        real = (split.train_x[1000:2000], split.train_y[1000:2000])
    else:
        path, real = made_data(name, folder, n)
        source = str(path)
    config = TrainConfig(family=family_name, steps=steps, data=source, params=params, seed=0)
    sets = {"real": real, "blurred": (measures._blur(measures._blur(real[0])), real[1])}
    if name == "mnist":
        sets["trained"] = shipped_samples("mnist-cgan", 1000)
    else:
        checkpoint = train(config)
        family = __import__("training.families", fromlist=["get_family"]).get_family(family_name)
        sets["trained"] = generated(checkpoint.generator, family, checkpoint.family_config, len(real[0]))
    early = train(TrainConfig(**{**config.to_dict(), "steps": early_steps}))
    family = __import__("training.families", fromlist=["get_family"]).get_family(family_name)
    sets["early"] = generated(early.generator, family, early.family_config, len(real[0]))
    fam, cfg, G = collapsed_run(config, 300)
    sets["collapsed"] = generated(G, fam, cfg, len(real[0]))
    shape = sets["real"][0].shape[1:]
    reference = evaluate.data_reference(source, tuple(shape), 1000)
    rows = {}
    for set_name in SETS:
        values, labels = sets[set_name]
        labels = labels if fam.conditional else None
        row = reference.measure(values, labels)
        if name == "mnist":
            row.update(evaluate.digit_images(values, labels))
        rows[set_name] = {k: row[k] for k in KEYS if k in row}
    return {"dataset": name, "family": family_name, "params": params, "steps": steps, "early_steps": early_steps,
            "collapsed": "G trained 300 steps alone against the run's fresh, frozen D",
            "measured_against": {k: v for k, v in reference.about.items() if k != "measures"},
            "baseline": reference.baseline, "sets": rows, "seconds": round(time.perf_counter() - t0, 1),
            "command": f"OMP_NUM_THREADS=1 python -m benchmarks.measures --dataset {name}"}


def shipped_samples(name: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The shipped model's default version's plain samples at the evaluation seed, as served."""
    from service import sampling
    from service.repository import load
    from service.repository.store import read_aliases, versions

    folder = ROOT / "models"
    version = read_aliases(name, [folder]).get("default") or max(versions(folder / name))
    model = load(name, version, folder / name / str(version))
    labels = sampling.resolve_labels(model, None, n)
    result = sampling.sample(model, n, 1234, labels=labels)
    return result.values, result.labels


def ranked(row: dict) -> bool:
    """Whether a dataset's sets rank real < trained < early < collapsed on every distance it has."""
    keys = [k for k in ("swd_ratio", "frechet_random_ratio", "frechet_ratio") if k in row["sets"]["real"]]
    return all(row["sets"]["real"][k] < row["sets"]["trained"][k] < row["sets"]["early"][k]
               < row["sets"]["collapsed"][k] for k in keys)


def table(records: list[dict]) -> str:
    lines = ["| dataset | set | SWD ratio | random-CNN Fréchet ratio | KID (×10³) | classifier Fréchet ratio | "
             "precision | recall | label acc. |", "|---|---|---|---|---|---|---|---|---|"]
    fmt = lambda v, p=2: "" if v is None else f"{v:.{p}f}"  # noqa: E731
    for r in records:
        for set_name in SETS:
            m = r["sets"][set_name]
            lines.append(f"| {r['dataset']} | {set_name} | {fmt(m.get('swd_ratio'))} | "
                         f"{fmt(m.get('frechet_random_ratio'))} | {fmt(m.get('kid_random'))} | "
                         f"{fmt(m.get('frechet_ratio'))} | {fmt(m.get('precision'), 3)} | {fmt(m.get('recall'), 3)} | "
                         f"{fmt(m.get('label_accuracy'), 3)} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=tuple(RUNS))
    parser.add_argument("--table", action="store_true")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    if args.table:
        records = [json.loads(p.read_text()) for p in sorted(OUT.glob("*.json"))]
        for r in records:
            r["ranked"] = ranked(r)
        (OUT.parent / "measures.json").write_text(json.dumps({"datasets": records}, indent=2) + "\n")
        print(table(records))
        return
    record = measure_dataset(args.dataset)
    record["ranked"] = ranked(record)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{args.dataset}.json").write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps({"ranked": record["ranked"], "sets": record["sets"]}, indent=1))


if __name__ == "__main__":
    main()
