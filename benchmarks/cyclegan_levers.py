"""The measure digits-cyclegan candidates are chosen on: training digits and the judges the card never reports.

The card (training/evaluate.py digits_translation) reports held-out digits read by evaluator A (UCI→MNIST) and the
UCI judge (MNIST→UCI). Choices are made here instead, so no reported number has been looked at by one:
- UCI→MNIST: UCI's 1,437 training digits, read by evaluator B (training/assets/mnist-judge); its Fréchet
  ratio to 1,437 MNIST training digits, over B's real-vs-real baseline;
- MNIST→UCI: 1,000 MNIST training digits, read by the plain UCI classifier (training/assets/uci-classifier).

    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.cyclegan_levers models/digits-cyclegan/1 var/models/digits-cyclegan/2
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from service.repository import load
from service.sampling.translation import translate_now
from training import evaluate
from training.data import mnist_split, uci_split


def measure(folder: Path) -> dict:
    model = load(folder.parent.name, int(folder.name), folder)
    mnist, uci = mnist_split(), uci_split()
    judge_b, plain_uci = evaluate.classifier(evaluate.JUDGE), evaluate.classifier(evaluate.UCI_PLAIN)
    baseline = evaluate.classifier_card(evaluate.JUDGE)["real_baseline"]["frechet"]
    n_b = len(uci["train_y"])
    real_features = judge_b.run(mnist["train_x"][:n_b])[1].astype(np.float64)

    to_mnist = translate_now(model, uci["train_x"], "b_to_a").values
    logits, features = judge_b.run(to_mnist)
    to_uci = translate_now(model, mnist["train_x"][:1000], "a_to_b").values
    return {
        "b_to_a_label_accuracy_B": float(np.mean(logits.argmax(1) == uci["train_y"])),
        "b_to_a_frechet_ratio_B": evaluate.frechet(features.astype(np.float64), real_features) / baseline,
        "a_to_b_label_accuracy_plain_uci": float(np.mean(plain_uci.run(to_uci)[0].argmax(1) == mnist["train_y"][:1000])),
    }


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print(json.dumps({"model": arg, **measure(Path(arg).resolve())}), flush=True)
