"""TrainConfig: what to train; it is also the payload of a training job."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from service.jobs.protocol import check_params


@dataclass
class TrainConfig:
    family: str
    steps: int | None = None  # None: the family's default
    # "default", "mnist", "uci", a file or folder path, or an uploaded data id; a translation family
    # takes one per domain: {"a": ..., "b": ...}
    data: str | dict[str, str] = "default"
    params: dict[str, Any] = field(default_factory=dict)  # the family's hyper-parameters
    model: str | None = None  # name to publish under; None: the family's name
    seed: int = 0
    progress_every: int = 50  # steps between progress reports
    snapshot_every: int = 0  # steps between sample-grid snapshots; 0: none
    checkpoint_every: int = 0  # steps between checkpoints; 0: only at the end
    threads: int = 0  # torch threads; 0: measured over the first steps (training/hardware.py)
    device: str = "auto"  # auto (CUDA when torch sees a GPU, else the CPU), cpu or cuda

    @property
    def model_name(self) -> str:
        return self.model or self.family

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, payload: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(payload) - known
        if unknown:
            raise ValueError(f"unknown training fields {sorted(unknown)}; known: {sorted(known)}")
        return cls(**payload)


def param(default, low, high, help: str):
    """A family hyper-parameter with its limits, validated at job submission (see catalog)."""
    return field(default=default, metadata={"min": low, "max": high, "help": help})


def family_params(config_cls) -> dict[str, dict[str, Any]]:
    """The hyper-parameters a family's Config accepts: type, default, limits, help."""
    out = {}
    for f in dataclasses.fields(config_cls):
        spec = {"type": type(f.default).__name__, "default": f.default}
        spec.update(f.metadata)
        out[f.name] = spec
    return out


def build_family_config(config_cls, params: dict[str, Any]):
    """The family's Config from user params, checked against the limits; ValueError names the field."""
    specs = family_params(config_cls)
    unknown = set(params) - set(specs)
    if unknown:
        raise ValueError(f"unknown params {sorted(unknown)}; known: {sorted(specs)}")
    return config_cls(**check_params(specs, params))
