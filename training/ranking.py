"""Choose a model's `nice` ranking on evaluator A, then write it and every mode's measures (A and B) into its card.

The protocol of training/evaluate.py, as code: the choice sees evaluator A only, at seeds other than
the evaluation seed; evaluator B is measured once the choice is written, by evaluate().

The rule: for each oversample in CHOICES, sample plain and nice at each of SEEDS and check the
issue's bars on A (nice more precise and more confident than plain, Fréchet ratio at most 1.25×
plain's, recall at least 0.9× plain's, and for a conditional model label accuracy ≥ 99.5 % in nice).
Keep the oversample that passes at the most seeds, then the one with the largest mean precision gain.

    ganserve rank models/mnist-dcgan/1 [--dry-run]
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from service import sampling
from service.repository import Card, load
from service.repository.card import Ranking
from training import evaluate

log = logging.getLogger(__name__)
CHOICES = (2, 3, 5, 10, 20)
SEEDS = (11, 12, 13, 14, 15, 16)  # never EVAL_SEED: the card's numbers are not the ones chosen on
N = 1000


def passes(plain: dict, nice: dict) -> bool:
    ok = (nice["precision"] > plain["precision"] and nice["mean_confidence"] > plain["mean_confidence"]
          and nice["frechet_ratio"] <= 1.25 * plain["frechet_ratio"] and nice["recall"] >= 0.9 * plain["recall"])
    return ok and nice.get("label_accuracy", 1.0) >= 0.995


def measure_a(model, seed: int, mode: str, oversample: int | None = None) -> dict:
    """Evaluator A's measures of n samples (evaluator B is not consulted while choosing)."""
    labels = sampling.resolve_labels(model, None, N)
    result = sampling.sample(model, N, seed, mode, oversample, labels)
    return evaluate.digit_images(result.values, result.labels)


def choose(model) -> tuple[int, str, list[dict]]:
    """(oversample, a sentence saying why, every row measured) by the rule above, on evaluator A."""
    plains = {seed: measure_a(model, seed, "plain") for seed in SEEDS}
    rows = []
    for k in CHOICES:
        nices = {seed: measure_a(model, seed, "nice", k) for seed in SEEDS}
        rows.append({
            "oversample": k,
            "passes": sum(passes(plains[s], nices[s]) for s in SEEDS),
            "precision_gain": float(np.mean([nices[s]["precision"] - plains[s]["precision"] for s in SEEDS])),
            "confidence_gain": float(np.mean([nices[s]["mean_confidence"] - plains[s]["mean_confidence"] for s in SEEDS])),
            "recall_ratio": float(np.mean([nices[s]["recall"] / plains[s]["recall"] for s in SEEDS])),
            "frechet_ratio": float(np.mean([nices[s]["frechet_ratio"] / plains[s]["frechet_ratio"] for s in SEEDS])),
            **({"label_accuracy": float(np.mean([nices[s]["label_accuracy"] for s in SEEDS]))}
               if model.labels is not None else {}),
        })
        log.info("%s", rows[-1])
    best = max(rows, key=lambda r: (r["passes"], r["precision_gain"]))
    why = (f"chosen on evaluator A at seeds {SEEDS[0]}-{SEEDS[-1]} (n={N}) among oversample {list(CHOICES)}: "
           f"1 of {best['oversample']} passed the bars at {best['passes']} of {len(SEEDS)} seeds, precision "
           f"{best['precision_gain']:+.3f} and confidence {best['confidence_gain']:+.3f} over plain on average, "
           f"recall {best['recall_ratio']:.2f}x and Fréchet {best['frechet_ratio']:.2f}x plain's")
    return best["oversample"], why, rows


def rank(folder: Path, dry_run: bool = False) -> dict:
    """Choose the ranking of the version in folder, write it into its card, and measure every mode on A and B."""
    folder = Path(folder)
    card = Card.load(folder)
    model = load(card.name, card.version or 0, folder)
    oversample, why, rows = choose(model)
    if dry_run:
        return {"oversample": oversample, "measured": why, "rows": rows}
    score = card.ranking.score if card.ranking is not None else Ranking().score  # the family's words, if any
    update_card(folder, ranking=Ranking(oversample=oversample, score=score, measured=why).model_dump())
    metrics = evaluate.evaluate(load(card.name, card.version or 0, folder))  # nice as the card now ranks it
    update_card(folder, metrics=metrics)
    return {"oversample": oversample, "measured": why, "rows": rows}


def update_card(folder: Path, **fields) -> None:
    """Set top-level fields of a card.json, every other key kept as it was and where it was."""
    path = Path(folder) / "card.json"
    raw = json.loads(path.read_text())
    raw.update(fields)
    Card.model_validate(raw)  # never write a card the service would refuse
    path.write_text(json.dumps(raw, indent=2) + "\n")

