"""The configured limits, checked before any work or memory they bound; messages name field and limit."""
from __future__ import annotations

from service.errors import LimitError
from service.settings import Settings


def label_total(labels: list | dict | None, most: int, setting: str) -> int | None:
    """How many samples `labels` (one per sample, or {label: count}) ask for: counts ≥ 0, total ≤ most.

    Checked on the counts themselves, before any list of labels is built from them.
    """
    if labels is None:
        return None
    if isinstance(labels, dict):
        for label, count in labels.items():
            if count < 0:
                raise LimitError(f"labels: the count for {label!r} must be non-negative, got {count}")
        total = sum(labels.values())
    else:
        total = len(labels)
    if total > most:
        raise LimitError(f"labels: at most {most} samples in all ({setting}), got {total}")
    return total


def check_candidates(mode: str, n: int, oversample: int, settings: Settings) -> None:
    """nice and rejection draw n × oversample candidates: both factors and their product are bounded."""
    if mode == "plain":
        return
    if oversample > settings.max_oversample:
        raise LimitError(f"oversample: at most {settings.max_oversample} (max_oversample), got {oversample}")
    if n * oversample > settings.max_candidates:
        raise LimitError(f"oversample: n × oversample is at most {settings.max_candidates} candidates "
                         f"(max_candidates), got {n * oversample}")


def steered_n(request, most: int, setting: str) -> int | None:
    """How many samples explicit latents (rows) or a walk (steps) make, checked against most before any
    array is built; None when the request draws its latents from a seed. The rest of the request must
    agree: mode plain, no seed, n left out or equal."""
    latents, walk = request.latents, request.walk
    if latents is None and walk is None:
        return None
    if latents is not None and walk is not None:
        raise LimitError("latents: give explicit latents or a walk, not both")
    field, count, what = ("latents", len(latents), "rows") if latents is not None else ("walk.steps", walk.steps, "steps")
    source = field.split(".")[0]
    if request.mode != "plain":
        raise LimitError(f"mode: {request.mode} draws its own candidates; {source} needs mode plain")
    if request.seed is not None:
        raise LimitError(f"seed: {source} gives the latents, no seed draws them; leave seed out")
    if not 1 <= count <= most:
        raise LimitError(f"{field}: between 1 and {most} {what} ({setting}), got {count}")
    if request.n is not None and request.n != count:
        raise LimitError(f"n: {source} makes {count} samples, not n={request.n}; leave n out")
    return count
