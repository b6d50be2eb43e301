"""service/jobs/catalog.json: every family's hyper-parameters and limits, so the service validates jobs
without torch.

Regenerate after changing a family: `python -m training.catalog` (a test fails when it is stale).
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
            "kind": module.KIND,
            "labels": list(module.LABELS) if module.LABELS else None,
            "description": (module.__doc__ or "").strip(),
            "default_steps": module.DEFAULT_STEPS,
            "params": family_params(module.Config),
            "gate": [{"metric": m, "op": op, "limit": limit} for m, op, limit in module.GATE],
        }
        for name, module in sorted(FAMILIES.items())
    }


def render() -> str:
    return json.dumps(build(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    PATH.write_text(render())
    print(f"wrote {PATH}")
