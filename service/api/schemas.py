"""Request and response models."""
from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, field_validator
from pydantic_core import PydanticCustomError

Seed = Annotated[StrictInt, Field(ge=0, le=2**63 - 1, description="latent seed; omitted: one is chosen and returned")]
Label = StrictInt | str


class SampleRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n: Annotated[StrictInt, Field(ge=1, description="number of samples (at most the configured max_n); "
                                  "with labels and no n, the number of labels or the sum of the counts")] = 16
    seed: Seed | None = None
    mode: Literal["plain", "nice", "rejection"] = Field(
        "plain", description="plain; nice: the best n of oversample·n candidates by discriminator score (each label, "
                             "or each cluster of a coded model, keeping its share; the X-Ranking header says how); "
                             "rejection: discriminator rejection sampling (Azadi et al. 2019)")
    oversample: Annotated[StrictInt, Field(ge=1, description="candidates per kept sample in nice mode (default: "
                                           "the model's own, from its card's ranking, else 20); the candidate "
                                           "budget per sample in rejection mode (default 20)")] | None = None
    labels: list[Label] | dict[str, StrictInt] | None = Field(
        None, description="one label per sample, or {label: count}; conditional models only")
    format: Literal["json", "png", "npy", "npz", "zip"] = "json"
    grid: tuple[Annotated[StrictInt, Field(ge=1)], Annotated[StrictInt, Field(ge=1)]] | None = Field(
        None, description="[rows, cols] of a png grid of images; default ⌈n/⌊√n⌋⌉ × ⌊√n⌋")
    version: Annotated[StrictInt, Field(ge=1)] | None = None

    @field_validator("labels", mode="wrap")
    @classmethod
    def _labels_in_one_message(cls, value, handler):
        """One error naming both accepted shapes, instead of one per branch of the union."""
        try:
            return handler(value)
        except ValidationError:
            raise PydanticCustomError(
                "labels", "give one label per sample (names or integers), or an object of label: count with integer "
                "counts; got {got}", {"got": repr(value)[:80]}) from None


class JobRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    family: str
    steps: Annotated[StrictInt, Field(ge=1)] | None = None
    data: str = "default"
    params: dict[str, Any] = Field(default_factory=dict)
    model: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")] | None = None
    seed: Annotated[StrictInt, Field(ge=0, le=2**31 - 1)] = 0


class DatasetRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="the model to sample")
    version: Annotated[StrictInt, Field(ge=1)] | None = None
    n: Annotated[StrictInt, Field(ge=1, description="samples in all (at most max_dataset_n); with label "
                                  "counts and no n, their sum; a conditional model cycles through its labels")] | None = None
    labels: list[Label] | dict[str, StrictInt] | None = Field(
        None, description="one label per sample, or {label: count}; conditional models only")
    seed: Seed | None = None
    mode: Literal["plain", "nice"] = "plain"
    oversample: Annotated[StrictInt, Field(ge=1, description="candidates per kept sample in nice mode (default: "
                                           "the model's own, from its card's ranking, else 20)")] | None = None
    format: Literal["npz", "zip"] = Field("npz", description="npz: x, y, label_names, scores; "
                                          "zip: one folder of PNGs per label and index.csv")
