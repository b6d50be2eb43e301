"""TrainConfig: what to train; it is also the payload of a training job."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass
class TrainConfig:
    family: str
    steps: int | None = None  # None: the family's default
    data: str = "default"  # "default", "mnist", a file or folder path, or an uploaded data id
    params: dict[str, Any] = field(default_factory=dict)  # the family's hyper-parameters
    model: str | None = None  # name to publish under; None: the family's name
    seed: int = 0
    progress_every: int = 50  # steps between progress reports
    snapshot_every: int = 0  # steps between sample-grid snapshots; 0: none
    checkpoint_every: int = 0  # steps between checkpoints; 0: only at the end
    threads: int = 0  # torch threads; 0: leave torch's default

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


def check_params(specs: dict[str, dict[str, Any]], params: dict[str, Any]) -> dict[str, Any]:
    """Values coerced to each param's type and checked against its limits (no torch needed)."""
    checked = {}
    for name, value in params.items():
        spec = specs[name]
        kind = spec["type"]
        if kind == "int" and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError(f"params.{name} must be an integer, got {value!r}")
        if kind == "float":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"params.{name} must be a number, got {value!r}")
            value = float(value)
        if kind == "bool" and not isinstance(value, bool):
            raise ValueError(f"params.{name} must be true or false, got {value!r}")
        if kind == "str" and not isinstance(value, str):
            raise ValueError(f"params.{name} must be a string, got {value!r}")
        if "min" in spec and value < spec["min"]:
            raise ValueError(f"params.{name} must be >= {spec['min']}, got {value}")
        if "max" in spec and value > spec["max"]:
            raise ValueError(f"params.{name} must be <= {spec['max']}, got {value}")
        if "choices" in spec and value not in spec["choices"]:
            raise ValueError(f"params.{name} must be one of {spec['choices']}, got {value!r}")
        checked[name] = value
    return checked
