"""The tiny models checked in under tests/assets/models, made by the real trainer and exporter.

The unit and api tiers serve them without torch; `make tiny-models` makes them again (after a change to a
family or the exporter), and the quality tier checks that what is checked in is what the exporter makes.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

from tests.utils import TINY_MODELS, TINY_SERVED, export_tiny


def make(folder: Path) -> Path:
    """Every served kind once (quadratic evaluated, as a real version is, and aliased as the default: two steps
    do not pass its gate)."""
    from service.repository.store import write_alias

    for family in TINY_SERVED:
        evaluated = family == "quadratic"
        export_tiny(family, folder, steps=2 if evaluated else 1, evaluate=evaluated)
    write_alias("quadratic", "default", 1, folder)
    return folder


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else TINY_MODELS
    shutil.rmtree(target, ignore_errors=True)
    print(make(target))
