"""Measure the truncation trick on published digit models and record it in their cards.

    python -m training.truncation                   # every model in models/ the digit measures apply to
    python -m training.truncation mnist-dcgan --repository models

Adds (or replaces) the card's "truncation" key: precision, recall and Fréchet ratio at each ψ of
evaluate.TRUNCATIONS, as the exporter records them for new versions. Nothing else in card.json
changes: the file is rewritten as it was read, with that one key added.
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from service.repository import Repository
from training.evaluate import truncation_effect

log = logging.getLogger(__name__)


def record(card_path: Path, effect: dict) -> None:
    """Write `effect` under "truncation" in a card.json, every other key and byte as it was."""
    card = json.loads(card_path.read_text())
    card["truncation"] = effect
    tmp = card_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(card, indent=2) + "\n")
    tmp.replace(card_path)


def measure(repository: Path, names: list[str] | None = None, n: int = 1000) -> dict[str, dict]:
    """Each model's latest version measured, and its card updated; models the measures do not fit are skipped."""
    models = Repository([repository])
    models.refresh()
    done = {}
    for name in names or models.names():
        model = models.get(name)
        effect = truncation_effect(model, n=n)
        if effect is None:
            log.info("%s: no digit measures for its kind and shape; skipped", name)
            continue
        record(model.path / "card.json", effect)
        done[name] = effect
    return done


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help="model names (default: every one that fits)")
    parser.add_argument("--repository", type=Path, default=Path("models"))
    parser.add_argument("--n", type=int, default=1000)
    args = parser.parse_args(argv)
    for name, effect in measure(args.repository, args.models, args.n).items():
        print(name)
        for row in effect["by_psi"]:
            print(f"  psi {row['psi']:.1f}  precision {row['precision']:.3f}  recall {row['recall']:.3f}  "
                  f"Fréchet ratio {row['frechet_ratio']:.2f}")


if __name__ == "__main__":
    main()
