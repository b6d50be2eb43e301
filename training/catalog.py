"""service/jobs/catalog.json: every family's hyper-parameters and limits, so the service validates jobs
without torch.

Regenerate after changing a family: `ganserve catalog` (`make catalog`; a test fails when it is stale).
"""
from __future__ import annotations

import json
from pathlib import Path

from service.jobs import protocol
from training import data
from training.config import family_params
from training.families import FAMILIES
from training.memory import catalog_entry

PATH = Path(protocol.__file__).with_name(protocol.CATALOG)


def build() -> dict:
    return {
        name: {
            "kind": family.KIND,
            "labels": list(family.LABELS) if family.LABELS else None,
            "description": family.description,
            "default_steps": family.DEFAULT_STEPS,
            "params": family_params(family.Config),
            "gate": [{"metric": m, "op": op, "limit": limit} for m, op, limit in family.GATE],
            "memory": catalog_entry(family),
            "default_data": family.DEFAULT_DATA,
            "min_images": min_images(family),
        }
        for name, family in sorted(FAMILIES.items())
    }


def min_images(family) -> int:
    """The fewest images an upload must hold to train the family: a sampling family's evaluation holds some out
    (data.split_indices), so it needs one held out and one to train on; a translation family measures on the
    built-in digits and trains on any."""
    if family.KIND == "translation":
        return 1
    return next(n for n in range(1, 100) if len(data.split_indices(n, None)[1]) > 0)


def render() -> str:
    return json.dumps(build(), indent=2, sort_keys=True) + "\n"


def is_current(path: Path = PATH) -> bool:
    """Whether the catalog on disk is the one the families give today."""
    return path.exists() and path.read_text() == render()


def write(path: Path = PATH) -> Path:
    path.write_text(render())
    return path
