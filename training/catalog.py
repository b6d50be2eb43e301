"""service/jobs/catalog.json: every family's hyper-parameters and limits, so the service validates jobs
without torch.

Regenerate after changing a family: `ganserve catalog` (`make catalog`; a test fails when it is stale).
"""
from __future__ import annotations

import json
from pathlib import Path

from service.jobs import protocol
from training.config import family_params
from training.families import FAMILIES

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
        }
        for name, family in sorted(FAMILIES.items())
    }


def render() -> str:
    return json.dumps(build(), indent=2, sort_keys=True) + "\n"


def is_current(path: Path = PATH) -> bool:
    """Whether the catalog on disk is the one the families give today."""
    return path.exists() and path.read_text() == render()


def write(path: Path = PATH) -> Path:
    path.write_text(render())
    return path
