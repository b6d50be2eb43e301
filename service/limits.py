"""The configured limits of sampling requests, checked before any work or memory they bound.

One Limits per request, made for its route: /samples and samples.png count against max_n and
max_candidates, /datasets against max_dataset_n and max_dataset_candidates (explicit latents and walks
against max_n on both). Every message names the field and the limit, as the setting is called.
"""
from __future__ import annotations

from dataclasses import dataclass

from service.settings import Settings


class LimitError(ValueError):
    """A request over a configured limit; the message names the field and the limit."""


DEFAULT_N = 16  # samples of a request that names no n, no labels, no latents and no walk


@dataclass(frozen=True)
class Limits:
    settings: Settings
    route: str  # "samples" or "datasets"

    @property
    def max_n(self) -> tuple[int, str]:
        s = self.settings
        return (s.max_dataset_n, "max_dataset_n") if self.route == "datasets" else (s.max_n, "max_n")

    @property
    def max_candidates(self) -> tuple[int, str]:
        s = self.settings
        if self.route == "datasets":
            return s.max_dataset_candidates, "max_dataset_candidates"
        return s.max_candidates, "max_candidates"

    def n(self, spec, draws_candidates: bool) -> int:
        """How many samples the request asks for, every bound on the request alone checked: explicit latents'
        rows or a walk's steps (against max_n), the labels' count or the sum of their counts, the n given, or
        DEFAULT_N (/samples only: a dataset names its size)."""
        most, setting = self.max_n
        steered = self.steered(spec, draws_candidates)
        if steered is not None and spec.start:
            raise LimitError("start: explicit latents and walks start at their first row; leave start out")
        total = self.labels(spec.labels, most, setting)
        if steered is not None:
            return steered
        if self.route == "datasets":
            n = spec.n or (None if total is None else total - spec.start)
            if not n or n < 1:
                raise LimitError("n: required, at least 1 (or labels whose counts add up to more than start)")
        elif spec.n is not None:
            n = spec.n
        elif total is not None:
            if total < 1:
                raise LimitError("labels: no samples asked for; give at least one label or a count of at least 1")
            n = total
        else:
            n = DEFAULT_N
        if n > most:
            per = "dataset" if self.route == "datasets" else "request"
            raise LimitError(f"n: at most {most} samples per {per} ({setting}), got {n}")
        return n

    @staticmethod
    def labels(labels: list | dict | None, most: int, setting: str) -> int | None:
        """How many samples `labels` (one per sample, or {label: count}) ask for: counts ≥ 0, total ≤ most;
        checked on the counts themselves, before any list of labels is built from them."""
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

    def steered(self, spec, draws_candidates: bool) -> int | None:
        """How many samples explicit latents (rows) or a walk (steps) make, checked against max_n before any
        array is built; None when the latents are drawn from a seed. The rest of the request must agree:
        mode plain, no seed, n left out or equal."""
        latents, walk = spec.latents, spec.walk
        if latents is None and walk is None:
            return None
        if latents is not None and walk is not None:
            raise LimitError("latents: give explicit latents or a walk, not both")
        field, count, what = ("latents", len(latents), "rows") if latents is not None else ("walk.steps", walk.steps,
                                                                                            "steps")
        source = field.split(".")[0]
        if draws_candidates:
            raise LimitError(f"mode: {spec.mode} draws its own candidates; {source} needs mode plain")
        if spec.seed is not None:
            raise LimitError(f"seed: {source} gives the latents, no seed draws them; leave seed out")
        if not 1 <= count <= self.settings.max_n:
            raise LimitError(f"{field}: between 1 and {self.settings.max_n} {what} (max_n), got {count}")
        if spec.n is not None and spec.n != count:
            raise LimitError(f"n: {source} makes {count} samples, not n={spec.n}; leave n out")
        return count

    def candidates(self, draws: bool, n: int, oversample: int) -> None:
        """A mode that draws candidates draws n × oversample: both factors and their product are bounded."""
        if not draws:
            return
        if oversample > self.settings.max_oversample:
            raise LimitError(f"oversample: at most {self.settings.max_oversample} (max_oversample), got {oversample}")
        most, setting = self.max_candidates
        per = " per dataset" if self.route == "datasets" else ""
        if n * oversample > most:
            raise LimitError(f"oversample: n × oversample is at most {most} candidates{per} ({setting}), "
                             f"got {n * oversample}")

    def grid(self, grid: tuple[int, int] | None, encoder, n: int) -> None:
        """A grid's cells, for a format that tiles images into one: at most max_grid, at least n."""
        if grid is None:
            return
        rows, cols = grid
        if not encoder.tiles:
            from service.formats import FORMATS

            tiling = " or ".join(repr(name) for name, other in FORMATS.items() if other.tiles)
            raise LimitError(f"grid: only for format {tiling}, not {encoder.name!r}")
        if rows * cols > self.settings.max_grid:
            raise LimitError(f"grid: at most {self.settings.max_grid} cells (max_grid), got {rows * cols}")
        if rows * cols < n:
            raise LimitError(f"grid: {rows}×{cols} holds {rows * cols} images, fewer than n={n}")
