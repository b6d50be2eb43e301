"""The project's own quality measures, taken on the exported ONNX model exactly as it is served."""
from __future__ import annotations

import numpy as np

from service import sampling
from service.repository import Model

EVAL_SEED = 1234  # fixed, so a card's numbers can be reproduced with `ganserve evaluate`
BINS = 20


def points(values: np.ndarray) -> dict:
    """quadratic: distance from y = x², and how evenly x covers [-0.5, 0.5]."""
    x, y = values[:, 0].astype(np.float64), values[:, 1].astype(np.float64)
    residual = np.abs(y - x * x)
    counts, _ = np.histogram(x, bins=BINS, range=(-0.5, 0.5))
    return {
        "mean_abs_residual": float(residual.mean()),
        "p95_abs_residual": float(np.percentile(residual, 95)),
        "x_bins_covered": int((counts >= 0.01 * len(x)).sum()),
        "x_bins": BINS,
        "x_outside_range": float(np.mean((x < -0.5) | (x > 0.5))),
    }


MEASURES = {"points": points}


def evaluate(model: Model, n: int = 1000, seed: int = EVAL_SEED, modes=("plain", "nice")) -> dict:
    """Metrics per sampling mode for a loaded model, from n samples each."""
    measure = MEASURES.get(model.card["kind"])
    if measure is None:
        raise ValueError(f"no evaluator for kind {model.card['kind']!r}; known: {sorted(MEASURES)}")
    out = {"n": n, "seed": seed}
    for mode in modes:
        if mode != "plain" and model.discriminator is None:
            continue
        labels = sampling.resolve_labels(model, None, n)
        result = sampling.sample(model, n, seed, mode=mode, labels=labels)
        out[mode] = measure(result.values) if model.labels is None else measure(result.values, result.labels)
    return out
