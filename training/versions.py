"""Version numbers in a model folder: numeric sub-folders, anything else ignored."""
from pathlib import Path


def versions(model_dir: Path) -> list[int]:
    if not model_dir.is_dir():
        return []
    return sorted(int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit())


def next_version(model_dir: Path, *others: Path) -> int:
    """One above the highest version in this folder and any other folders of the same model."""
    return max([0, *versions(model_dir), *(v for o in others for v in versions(o))]) + 1
