"""Measure the truncation trick on published digit models and record it in their cards.

    ganserve truncation                   # every model in models/ whose measures ask for it (the digit families')
    ganserve truncation mnist-dcgan --repository models

Adds (or replaces) the card's "truncation" key: precision, recall and Fréchet ratio at each ψ of
evaluate.TRUNCATIONS, as the exporter records them for new versions. Nothing else in card.json
changes: the file is rewritten as it was read, with that one key added.
"""
from __future__ import annotations

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
    """Each model's latest version measured, and its card updated; models whose measures do not ask are skipped."""
    models = Repository([repository])
    models.refresh()
    done = {}
    for name in names or models.names():
        model = models.get(name)
        effect = truncation_effect(model, n=n)
        if effect is None:
            log.info("%s: its family's measures record no truncation effect; skipped", name)
            continue
        record(model.path / "card.json", effect)
        done[name] = effect
    return done

