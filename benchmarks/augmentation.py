"""Do generated digits help a classifier? The shipped mnist-cgan's samples through /v1/datasets, measured.

One small CNN for every arm, trained for the same number of optimiser steps, tested on the project's
1,000 held-out digits (which no GAN and no classifier here ever sees), 3 seeds, mean ± sd:

  real 4000              the 4,000 training digits
  cas <mode>             4,000 generated digits only (400 per class): the Classification Accuracy Score
  real 500               50 training digits per class
  real 500 + <mode>      the same 500, with 4,000 generated digits; each batch half real, half generated

Modes: plain, nice, rejection, filtered (the project's classifier must give the requested label
≥ threshold). The generated data of seed s is a fresh dataset (seed 11 + s) from a server this
script starts on the shipped repository (or --url), fetched with ganserve_client.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python -m benchmarks.augmentation   # ~20 min on one thread
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MODES = ("plain", "nice", "rejection", "filtered")
PER_CLASS = 400


def start_server(tmp: Path, repository: Path = ROOT / "models") -> tuple[subprocess.Popen, str]:
    """uvicorn on the shipped models, a candidate's repository beside them if named, and a scratch writable folder.

    Versions are numbered across all folders, so a candidate trained with --repository (which has no default
    of its own) is served as a version of the shipped model.
    """
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    shipped = ROOT / "models"
    folders = [tmp / "models", repository] + ([] if repository.resolve() == shipped.resolve() else [shipped])
    env = {**os.environ, "GANSERVE_REPOSITORY": ":".join(map(str, folders)), "GANSERVE_DATA": str(tmp),
           "GANSERVE_API_KEYS": "", "GANSERVE_ORT_THREADS": "1", "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "uvicorn", "service.app:create_app", "--factory", "--port",
                                str(port), "--log-level", "warning"], cwd=ROOT, env=env)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError("the server did not become ready")


def synthetic(url: str, mode: str, seed: int, cache: Path, oversample: int, threshold: float | None,
              versions: tuple[int | None, ...] = (None,), tag: str = "", truncation: float = 1.0) -> dict:
    """4,000 generated digits (400 per class) as float32 (n, 1, 28, 28) in [-1, 1] and labels, in equal shares
    from each of `versions` (an ensemble of generators, Eilertsen et al. 2021; None: the default alias).
    `tag` names the model behind `url` in the cache (a cache is only valid for the model that filled it)."""
    shares = [PER_CLASS // len(versions) + (i < PER_CLASS % len(versions)) for i in range(len(versions))]
    # a seed of its own for each member: a continued version maps a shared latent to nearly the same digit
    parts = [dataset(url, mode, seed + 100 * i, cache, oversample, threshold, v, tag, truncation, k)
             for i, (v, k) in enumerate(zip(versions, shares))]
    x, y = np.concatenate([p["x"] for p in parts]), np.concatenate([p["y"] for p in parts])
    candidates = sum(k / p["acceptance"] for k, p in zip(shares, parts))  # per class: what the kept ones cost
    return {"x": (x[:, None].astype(np.float32) / 127.5 - 1), "y": y.astype(np.int64),
            "acceptance": float(PER_CLASS / candidates),
            "seconds": float(sum(p["seconds"] for p in parts))}


def dataset(url: str, mode: str, seed: int, cache: Path, oversample: int, threshold: float | None,
            version: int | None, tag: str, truncation: float, per_class: int) -> dict:
    """`per_class` digits of each label (interleaved) from one version, through /v1/datasets, cached."""
    from ganserve_client import Client

    psi = "" if truncation == 1 else f"-psi{truncation:g}"
    share = "" if per_class == PER_CLASS else f"-{per_class}"
    path = cache / f"{tag}{mode}-{seed}-{oversample}-{threshold}-v{version}{psi}{share}.npz"
    if not path.exists():
        t0 = time.perf_counter()
        with Client(url, timeout=1200) as client:
            data = client.dataset("mnist-cgan", labels={str(d): per_class for d in range(10)}, order="interleaved",
                                  seed=seed, mode=mode, oversample=None if mode == "plain" else oversample,
                                  threshold=threshold if mode == "filtered" else None, version=version,
                                  truncation=None if truncation == 1 else truncation)
        np.savez(path, x=data.x, y=data.y, acceptance=np.float64(data.acceptance_rate or 1.0),
                 seconds=time.perf_counter() - t0)
    arrays = np.load(path)
    return {"x": arrays["x"], "y": arrays["y"], "acceptance": float(arrays["acceptance"]),
            "seconds": float(arrays["seconds"])}


def network():
    from torch import nn

    return nn.Sequential(  # (n, 1, 28, 28)
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (n, 16, 14, 14)
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (n, 32, 7, 7)
        nn.Flatten(), nn.Linear(32 * 49, 64), nn.ReLU(), nn.Dropout(0.2), nn.Linear(64, 10))


def shift(x, gen):
    """Random shifts of up to 2 pixels (pad with the background, crop): the same for every arm."""
    import torch
    import torch.nn.functional as F

    padded = F.pad(x, (2, 2, 2, 2), value=-1.0)  # (n, 1, 32, 32)
    dx, dy = torch.randint(0, 5, (2,), generator=gen).tolist()
    return padded[:, :, dy:dy + 28, dx:dx + 28]


def train(sources: list[tuple[np.ndarray, np.ndarray]], shares: list[float], steps: int, batch: int, seed: int,
          test: tuple[np.ndarray, np.ndarray], anneal: bool = False) -> float:
    """Held-out accuracy (%) of the network after `steps` Adam steps on batches drawn from the sources in shares.

    `anneal` (two sources, real first): the second source's share of a batch falls linearly from 1 at the
    first step to 0 at the last (its mean share is 0.5): generated digits first, the real ones last."""
    import torch
    import torch.nn.functional as F

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = network()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    tensors = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in sources]
    counts = [round(batch * s) for s in shares]
    counts[-1] = batch - sum(counts[:-1])
    model.train()
    for step in range(steps):
        if anneal and len(tensors) == 2:
            second = round(batch * (1 - step / max(1, steps - 1)))
            counts = [batch - second, second]
        xs, ys = [], []
        for (x, y), k in zip(tensors, counts):
            if k == 0:
                continue
            idx = torch.randint(len(x), (k,), generator=gen)
            xs.append(x[idx])
            ys.append(y[idx])
        loss = F.cross_entropy(model(shift(torch.cat(xs), gen)), torch.cat(ys))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    model.eval()
    with torch.no_grad():
        predicted = model(torch.from_numpy(test[0])).argmax(1).numpy()
    return float((predicted == test[1]).mean() * 100)


def validation_split(x: np.ndarray, y: np.ndarray, small: int, n: int = 1000) -> dict[str, np.ndarray]:
    """For choosing (never for reporting): the last n training digits outside the real-500 subset become the
    test set and drop out of the real arm; the GAN and the filter's classifier did see them, so a choice
    made here compares candidates, it does not estimate an accuracy."""
    keep = np.concatenate([np.flatnonzero(y == c)[:small] for c in range(10)])
    rest = np.setdiff1d(np.arange(len(y)), keep)
    test = rest[-n:]
    train = np.setdiff1d(np.arange(len(y)), test)
    return {"train_x": x[train], "train_y": y[train], "test_x": x[test], "test_y": y[test]}


def real_subset(x: np.ndarray, y: np.ndarray, per_class: int) -> tuple[np.ndarray, np.ndarray]:
    """The first per_class training digits of each class (the split is shuffled once, seeded)."""
    keep = np.concatenate([np.flatnonzero(y == c)[:per_class] for c in range(10)])
    return x[keep], y[keep]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a running server (default: start one on the shipped models)")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--oversample", type=int, default=20)
    parser.add_argument("--threshold", type=float, default=None, help="filtered (default: the server's, 0.9)")
    parser.add_argument("--real-share", type=float, default=0.5, help="share of each batch that is real, real 500 + synthetic")
    parser.add_argument("--mix", choices=("constant", "anneal"), default="constant",
                        help="real 500 + synthetic: the real share fixed, or rising linearly from 0 to 1 (synthetic first)")
    parser.add_argument("--repository", type=Path, default=ROOT / "models",
                        help="a candidate's model repository, served beside the shipped models")
    parser.add_argument("--truncation", type=float, default=1.0,
                        help="ψ for the generated data: below 1 truncation, above 1 the expansion trick")
    parser.add_argument("--version", default="", help="the mnist-cgan version (default: the default alias), or "
                        "several (1,3): an ensemble, equal shares of each class from each")
    parser.add_argument("--holdout", choices=("test", "validation"), default="test",
                        help="validation: score on 1,000 training digits outside real 500, to choose levers")
    parser.add_argument("--arms", default="", help="only arms whose names start with one of these (comma-separated)")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "ganserve-augmentation")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "augmentation.json")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    sys.path.insert(0, str(ROOT))
    from training.data import mnist_split

    split = mnist_split()
    if args.holdout == "validation":
        split = validation_split(split["train_x"], split["train_y"], 50)
    test = (split["test_x"], split["test_y"])
    real = (split["train_x"], split["train_y"])
    small = real_subset(*real, 50)
    modes = [m for m in args.modes.split(",") if m]
    versions = tuple(int(v) for v in args.version.split(",") if v) or (None,)
    args.cache.mkdir(parents=True, exist_ok=True)
    server, url = (None, args.url) if args.url else start_server(Path(tempfile.mkdtemp(prefix="ganserve-aug-")),
                                                                           args.repository.resolve())
    tag = "" if args.repository.resolve() == (ROOT / "models").resolve() else f"{args.repository.resolve().name}-"
    results: dict[str, list[float]] = {}
    extra: dict[str, dict] = {}
    t_start = time.perf_counter()
    try:
        for s in range(args.seeds):
            data = {m: synthetic(url, m, 11 + s, args.cache, args.oversample, args.threshold, versions, tag,
                                 args.truncation) for m in modes}
            for m, d in data.items():
                extra.setdefault(m, {"acceptance": [], "seconds": []})
                extra[m]["acceptance"].append(d["acceptance"])
                extra[m]["seconds"].append(d["seconds"])
            arms = {f"real {len(real[1])}": ([real], [1.0]), "real 500": ([small], [1.0])}
            for m in modes:
                arms[f"cas {m}"] = ([(data[m]["x"], data[m]["y"])], [1.0])
                arms[f"real 500 + {m}"] = ([small, (data[m]["x"], data[m]["y"])], [args.real_share, 1 - args.real_share])
            wanted = [a for a in args.arms.split(",") if a]
            arms = {k: v for k, v in arms.items() if not wanted or k.startswith(tuple(wanted))}
            for name, (sources, shares) in arms.items():
                t0 = time.perf_counter()
                acc = train(sources, shares, args.steps, args.batch, seed=s, test=test, anneal=args.mix == "anneal")
                results.setdefault(name, []).append(acc)
                print(f"seed {s} {name:<22} {acc:6.2f} %  ({time.perf_counter() - t0:.0f} s)", file=sys.stderr,
                      flush=True)
    finally:
        if server is not None:
            server.terminate()
            server.wait()
    summary = {name: {"mean": float(np.mean(v)), "sd": float(np.std(v, ddof=1)) if len(v) > 1 else 0.0, "runs": v}
               for name, v in results.items()}
    report = {"steps": args.steps, "batch": args.batch, "seeds": args.seeds, "real_share": args.real_share,
              "mix": args.mix, "holdout": args.holdout, "repository": str(args.repository),
              "version": list(versions) if len(versions) > 1 else versions[0],
              "truncation": args.truncation, "oversample": args.oversample, "threshold": args.threshold,
              "results": summary, "datasets": extra, "minutes": round((time.perf_counter() - t_start) / 60, 1)}
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(table(report))


def table(report: dict) -> str:
    res = report["results"]
    full = next((name for name in res if name.startswith("real ") and name != "real 500" and "+" not in name), "")
    ref = {name: res[name]["mean"] for name in (full, "real 500") if name in res}
    gap = lambda name: ref.get(full, float("nan")) - res[name]["mean"]  # noqa: E731
    lift = lambda name: res[name]["mean"] - ref.get("real 500", float("nan"))  # noqa: E731
    rows = ["| arm | held-out accuracy % (mean ± sd) | vs reference |", "|---|---|---|"]
    for name, r in res.items():
        note = ""
        if name.startswith("cas") and full in ref:  # --arms may leave the references out
            note = f"CAS gap {gap(name):+.2f} pt"
        elif name.startswith("real 500 +") and "real 500" in ref:
            note = f"{lift(name):+.2f} pt over real 500"
        rows.append(f"| {name} | {r['mean']:.2f} ± {r['sd']:.2f} | {note} |")
    for mode, d in report["datasets"].items():
        if mode in ("rejection", "filtered"):
            rows.append(f"| ({mode} acceptance) | {np.mean(d['acceptance']):.3f} | |")
    return "\n".join(rows)


if __name__ == "__main__":
    main()
