"""Request and response models."""
from __future__ import annotations

from typing import Annotated, Any, Callable, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, ValidationError, field_validator
from pydantic_core import PydanticCustomError, core_schema

from service import formats
from service.api.request import Spec
from service.sampling import modes
from service.sampling.latents import PSI_MAX
from service.sampling.steering import Walk


class OneOf:
    """A string field whose values are a registry's names, read when a request is validated and when the
    OpenAPI schema is made: a mode or format registered later is accepted and listed like the others."""

    def __init__(self, names: Callable[[], list[str]], describe: Callable[[], str] | None = None):
        self.names, self.describe = names, describe

    def __get_pydantic_core_schema__(self, source, handler):
        return core_schema.no_info_after_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(self, schema, handler):
        out = handler(schema)
        out["enum"] = self.names()
        if self.describe is not None:
            out["description"] = self.describe()
        return out

    def check(self, value: str) -> str:
        known = self.names()
        if value not in known:
            expected = ", ".join(repr(name) for name in known[:-1]) + f" or {known[-1]!r}"
            raise PydanticCustomError("literal_error", "Input should be {expected}", {"expected": expected})
        return value


ModeName = Annotated[str, OneOf(lambda: list(modes.MODES), modes.described)]


def format_name(route: str):
    """The format field of a route: its formats, each described."""
    return Annotated[str, OneOf(lambda: formats.names(route), lambda: formats.described(route))]

Seed = Annotated[StrictInt, Field(ge=0, le=2**63 - 1, description="latent seed; omitted: one is chosen and returned")]
Label = StrictInt | str
Truncation = Annotated[StrictFloat, Field(
    gt=0, le=PSI_MAX, description=f"the truncation trick, ψ in (0, {PSI_MAX:g}]: latents scaled toward their mean "
    "by ψ (a uniform latent's range becomes [-ψ, ψ]; a coded generator's cluster coordinate is kept); 1: off. "
    "Lower ψ trades variety for typical samples; the model card's `truncation` holds the measured effect. ψ above "
    "1 is the reverse, the expansion trick: more variety, less typical samples, for training data a guided mode "
    "(nice, rejection, filtered) then sorts")]
Latents = Annotated[list[list[Annotated[StrictFloat, Field(allow_inf_nan=False)]]], Field(
    description="explicit latents z, one row of the card's latent.dim numbers per sample (at most max_n rows); "
    "n is their count; drawn from nothing, so mode is plain and there is no seed")]


# Every request model: no field it does not name, and no NaN or Infinity in any number (a NaN passes every
# bound: NaN < 0 and NaN > 1 are both false).
STRICT = ConfigDict(extra="forbid", allow_inf_nan=False)


class WalkRequest(BaseModel):
    """k samples on the path from sample 0 of one seed to sample 0 of another, both ends included."""
    model_config = ConfigDict(**STRICT, populate_by_name=True)

    from_: Annotated[StrictInt, Field(ge=0, le=2**63 - 1, alias="from", description="the seed the walk starts at")]
    to: Annotated[StrictInt, Field(ge=0, le=2**63 - 1, description="the seed the walk ends at")]
    steps: Annotated[StrictInt, Field(ge=2, description="samples along the path, both ends included; n is this")]
    method: Literal["slerp", "lerp"] | None = Field(
        None, description="slerp: along the arc between the two latents; lerp: the straight line; default slerp "
                          "for normal latents, lerp for uniform ones (a slerp of uniform latents is clipped to "
                          "[-1, 1]). A conditional model keeps the first label unless labels gives one per step")


Threshold = Annotated[StrictFloat, Field(gt=0, le=1, description="filtered: the classifier's confidence in a sample's "
                                  "requested label needed to keep it; default: the service's filter_threshold")]


class Sampling:
    """What a sample request and a dataset request share, decoded into the one Spec of the request path."""

    def _spec(self, model: str, **extra) -> Spec:
        walk = None if self.walk is None else Walk(self.walk.from_, self.walk.to, self.walk.steps, self.walk.method)
        return Spec(model=model, version=self.version, n=self.n, seed=self.seed, mode=self.mode,
                    oversample=self.oversample, threshold=self.threshold, labels=self.labels, format=self.format,
                    truncation=self.truncation, latents=self.latents, walk=walk, **extra)


class SampleRequest(BaseModel, Sampling):
    model_config = STRICT

    n: Annotated[StrictInt, Field(ge=1, description="number of samples (at most the configured max_n); left "
                                  "out: the number of labels or the sum of their counts, the rows of latents, the "
                                  "steps of a walk, else 16")] | None = None
    seed: Seed | None = None
    mode: ModeName = modes.DEFAULT
    oversample: Annotated[StrictInt, Field(ge=1, description="candidates per kept sample in nice mode (default: "
                                           "the model's own, from its card's ranking, else 20); the candidate "
                                           "budget per sample in rejection and filtered mode (default 20)")] | None = None
    threshold: Threshold | None = None
    labels: list[Label] | dict[str, StrictInt] | None = Field(
        None, description="one label per sample, or {label: count}; conditional models only")
    format: format_name("samples") = formats.default("samples")  # type: ignore[valid-type]
    grid: tuple[Annotated[StrictInt, Field(ge=1)], Annotated[StrictInt, Field(ge=1)]] | None = Field(
        None, description="[rows, cols] of a png grid of images; default ⌈n/⌊√n⌋⌉ × ⌊√n⌋, a row for a walk")
    version: Annotated[StrictInt, Field(ge=1)] | None = None
    truncation: Truncation = 1.0
    latents: Latents | None = None
    walk: WalkRequest | None = None

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

    def spec(self, model: str) -> Spec:
        return self._spec(model, grid=self.grid)


Direction = Annotated[str, Field(min_length=1, max_length=80, description=(
    "a_to_b, b_to_a, <a>_to_<b> by the domains' names (mnist_to_uci), or the target domain's name"))]


class TranslateOptions(BaseModel):
    """What a /translate request asks besides its images (JSON fields, or multipart form fields)."""
    model_config = STRICT

    direction: Direction
    format: format_name("translate") = formats.default("translate")  # type: ignore[valid-type]
    version: Annotated[StrictInt, Field(ge=1)] | None = None


class TranslateRequest(TranslateOptions):
    """application/json: a few images as base64 PNGs (larger batches go as multipart files)."""
    images: list[Annotated[str, Field(max_length=2_000_000)]] = Field(
        min_length=1, description="base64 images (PNG; also JPEG, BMP, WebP, or an .npy), grey or colour (made grey); "
        "28×28, or another square size fitted into 28×28 as MNIST was")


class JobRequest(BaseModel):
    model_config = STRICT

    family: str
    steps: Annotated[StrictInt, Field(ge=1)] | None = None
    data: str | dict[Literal["a", "b"], str] = Field(
        "default", description="'default', 'mnist', 'uci' or an upload id; a translation family takes one per domain: "
                               "{\"a\": \"mnist\", \"b\": \"uci\" or an upload id}")
    params: dict[str, Any] = Field(default_factory=dict)
    model: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$",
                                description="the name to publish under; default: <family>-<short job id>. "
                                            "An existing name only when named here")] | None = None
    seed: Annotated[StrictInt, Field(ge=0, le=2**31 - 1)] = 0
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="what to train on: auto (the worker's "
                                                   "GANSERVE_DEVICE: a GPU when it has one), cpu, or cuda (422 "
                                                   "unless a running worker has a GPU)")
    promote: bool | None = Field(None, description="make the new version the model's default if it passes its "
                                 "family's quality gate; default: true for a new model name, false for an existing one")


class DatasetRequest(BaseModel, Sampling):
    model_config = STRICT

    model: str = Field(description="the model to sample")
    version: Annotated[StrictInt, Field(ge=1)] | None = None
    n: Annotated[StrictInt, Field(ge=1, description="samples in all (at most max_dataset_n); with label "
                                  "counts and no n, their sum; a conditional model cycles through its labels")] | None = None
    labels: list[Label] | dict[str, StrictInt] | None = Field(
        None, description="one label per sample, or {label: count}; conditional models only")
    seed: Seed | None = None
    start: Annotated[StrictInt, Field(ge=0, le=2**40, description="the index of the first sample: the response "
                                      "holds samples start..start+n-1 of the dataset, exactly as the whole would "
                                      "(resume a download, or split a dataset across workers by ranges)")] = 0
    order: Literal["grouped", "interleaved"] | None = Field(
        None, description="label counts grouped (all of one label, then the next: the default) or interleaved "
                          "(every label spread evenly: equal counts go round-robin, so any 10·k samples hold 10 of "
                          "each of k labels); without labels a conditional model cycles through its labels")
    mode: ModeName = modes.DEFAULT
    oversample: Annotated[StrictInt, Field(ge=1, description="candidates per kept sample in nice mode (default: "
                                           "the model's own, from its card's ranking, else 20); at most this many "
                                           "per sample in rejection and filtered mode (default 20)")] | None = None
    threshold: Threshold | None = None
    format: format_name("datasets") = formats.default("datasets")  # type: ignore[valid-type]
    truncation: Truncation = 1.0
    latents: Latents | None = None
    walk: WalkRequest | None = None

    def spec(self) -> Spec:
        return self._spec(self.model, start=self.start, order=self.order)
