"""Card: the typed card.json beside a version's ONNX files, shared by the exporter and the service.

The card describes its weights fully (family, kind, latent, labels, sample shape, value range,
training, metrics), so the service needs no training code to serve a model. It is checked against
the ONNX files' inputs and outputs when a version loads: a card that lies is a load error, never a
failing request later.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator



class CardError(ValueError):
    """A card that is unreadable or does not match its ONNX files; the message names the field."""


class Latent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dim: int = Field(ge=1)
    distribution: Literal["normal", "uniform"]
    codes: int = Field(0, ge=0, description="clusters a coded generator picks by z's first coordinate; 0: none")


OnnxFile = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*\.onnx$",
                                 description="a file name in the version's folder")]


class Domain(BaseModel):
    """One side of a translation model: its images, and the networks that translate from it and judge it."""
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9-]{0,31}$", description="e.g. mnist; a request may name a direction by it")
    description: str = ""
    shape: list[int] = Field(min_length=3, max_length=3, description="one image, (channels, height, width)")
    generator: OnnxFile = Field(description="translates this domain's images into the other domain: "
                                            "input `image`, output `translated` (ONNX names are unique in a graph)")
    discriminator: OnnxFile = Field(description="scores images as this domain's: input `image`, output `score` (n,)")


class Domains(BaseModel):
    """A translation model's two domains; direction a_to_b runs a's generator and scores with b's discriminator."""
    model_config = ConfigDict(extra="forbid")

    a: Domain
    b: Domain

    def files(self) -> list[str]:
        return [self.a.generator, self.b.generator, self.a.discriminator, self.b.discriminator]

    def direction(self, name: str) -> tuple[str, Domain, Domain]:
        """(canonical name, source, target) for a_to_b, b_to_a, <a>_to_<b>, or a target domain's name."""
        a, b = self.a, self.b
        table = {"a_to_b": ("a_to_b", a, b), "b_to_a": ("b_to_a", b, a), f"{a.name}_to_{b.name}": ("a_to_b", a, b),
                 f"{b.name}_to_{a.name}": ("b_to_a", b, a), b.name: ("a_to_b", a, b), a.name: ("b_to_a", b, a)}
        if name not in table:
            raise KeyError(f"direction: unknown direction {name!r}; known: {', '.join(table)}")
        return table[name]


class Bar(BaseModel):
    """One quality bar of a family's gate: a metric (mode.key in the card's metrics), a comparison, a limit."""
    metric: str
    op: Literal["<=", ">="]
    limit: float
    value: float | None = None  # measured, once checked
    passed: bool | None = None

    def check(self, metrics: dict[str, Any]) -> "Bar":
        mode, _, key = self.metric.partition(".")
        value = metrics.get(mode, {}).get(key)
        ok = value is not None and (value <= self.limit if self.op == "<=" else value >= self.limit)
        return self.model_copy(update={"value": value, "passed": bool(ok)})


class Gate(BaseModel):
    """The family's quality bars checked on a new version's own metrics, before it may become default."""
    outcome: Literal["passed", "failed"]
    bars: list[Bar] = Field(default_factory=list)

    @classmethod
    def check(cls, bars: list[Bar], metrics: dict[str, Any]) -> "Gate":
        """Every bar against the metrics; no bars (a family with no measure of its data) passes."""
        checked = [bar.check(metrics) for bar in bars]
        return cls(outcome="passed" if all(b.passed for b in checked) else "failed", bars=checked)

    def summary(self) -> str:
        return "; ".join(f"{b.metric} {b.value if b.value is None else round(b.value, 4)} {b.op} {b.limit}"
                         f" {'ok' if b.passed else 'MISSED'}" for b in self.bars) or "no bars"


class Lineage(BaseModel):
    """Where a version came from: enough to trace it back to its job, data and code."""
    job: str | None = None  # the job id, for versions published by a training job
    data: str | dict[str, str] = "default"  # the data source: default, mnist, uci, an upload id; {a, b} for translation
    data_sha256: str | None = None  # of the training arrays (or the upload's data file), when known
    project_version: str | None = None
    git_commit: str | None = None
    torch: str | None = None
    onnx_opset: int | None = None
    onnx_ir: int | None = None
    onnxruntime: str | None = None
    created: str | None = None
    split: dict[str, Any] | None = Field(None, description="the data's held-out split the run never trained on: "
                                         "seed, stratified, train and held_out counts, how it was made")
    hardware: dict[str, Any] | None = Field(None, description="what the run trained on: device (cpu, cuda), mixed "
                                            "precision, torch threads and how they were chosen, cores, workers")


class MeasuredAgainst(BaseModel):
    """What an image model's metrics were measured against: its own data's held-out split, and the feature spaces."""
    data: str = Field(description="the data source the run trained on, as the trainer read it")
    data_sha256: str | None = None
    split: dict[str, Any] = Field(default_factory=dict, description="seed, stratified, train, held_out, how")
    held_out_sha256: str | None = Field(None, description="of the held-out images and labels measured against")
    n: int = Field(description="samples per measure: as many as the real baseline's training images")
    measures: str = ""
    classifier: dict[str, Any] | None = Field(None, description="the classifier trained on the run's training split "
                                              "(labelled data): network, classes, steps, held-out accuracy")
    evaluators: str | None = Field(None, description="the built-in MNIST: the shipped digit evaluators")


class Ranking(BaseModel):
    """How `nice` ranks and keeps candidates for this model: chosen on evaluator A, reported on B
    (the protocol in training/evaluate.py). A card without one gets the classic best 1 of 20."""
    model_config = ConfigDict(extra="forbid")

    oversample: int = Field(20, ge=1, description="candidates per kept sample when a request names none")
    score: str = Field("D logit", pattern=r"^[ -~]*$", description="what the discriminator's score is, in ASCII "
                       "words for the X-Ranking header")
    measured: str = Field("", description="why this ranking: what it did on evaluator A, at which seeds")


class Line(BaseModel):
    """A reference polyline drawn in grey behind plotted samples."""
    model_config = ConfigDict(extra="forbid")

    points: list[tuple[float, float]] = Field(min_length=2, max_length=4096)
    width: int = Field(3, ge=1, le=16)
    grey: int = Field(160, ge=0, le=255)


class Picture(BaseModel):
    """How points and curves are drawn as a PNG, so the service plots a family's samples without its code."""
    model_config = ConfigDict(extra="forbid")

    x_range: tuple[float, float] | None = None  # None: fitted to the data
    y_range: tuple[float, float] | None = None
    x: list[float] | None = Field(None, description="curves: the x of each of a sample's values; None: "
                                  "linspace(-1, 1) for curves, and points are (x, y)")
    lines: list[Line] = Field(default_factory=list, max_length=64)


class Card(BaseModel):
    # Descriptive keys a family adds (reference, changes, label_meaning, ...) are kept as they are.
    model_config = ConfigDict(extra="allow")

    name: str
    family: str
    kind: str = Field(description="what the model makes: an output of one of the registered model kinds "
                                  "(service/repository/kinds/)")
    latent: Latent | None = Field(None, description="the generator's z (every kind but translation)")
    sample_shape: list[int] | None = Field(None, min_length=1, description="one sample (every kind but translation)")
    domains: Domains | None = Field(None, description="translation models: the two domains, shapes and files")
    labels: list[str] | None = None
    value_range: tuple[float, float] = (-1.0, 1.0)
    version: int | None = None
    description: str = ""
    training: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)
    created: str | None = None
    rejection: dict[str, list[float]] | None = None  # a card's own rejection-sampling constants, if any
    gate: Gate | None = None  # None: shipped before gates existed, or published without evaluation
    lineage: Lineage | None = None
    measured_against: MeasuredAgainst | None = None  # image models: their own data's held-out split
    promoted: bool | None = None  # whether publishing made it the default (None: shipped, no say)

    @field_validator("kind")
    @classmethod
    def _a_known_kind(cls, kind: str) -> str:
        from service.repository.kinds import KINDS  # the kinds import Card: asked when a card is read

        known = [made for model_kind in KINDS.values() for made in model_kind.makes]
        if kind not in known:
            raise ValueError(f"unknown kind {kind!r}; known: {', '.join(known)}")
        return kind

    @model_validator(mode="after")
    def _fields_of_the_kind(self) -> "Card":
        for name in _KIND_FIELDS[self.kind == "translation"]:
            if getattr(self, name) is None:
                raise ValueError(f"{name}: required for kind {self.kind!r}")
        return self

    @property
    def candidate(self) -> bool:
        """A version that must not become the default by being the newest: it failed its gate or was
        published without promotion. Only an explicit alias makes such a version the default."""
        return self.promoted is False or (self.gate is not None and self.gate.outcome == "failed")
    ranking: Ranking | None = None  # how nice ranks this model's candidates; None: the classic 1 of 20
    picture: Picture | None = Field(None, description="points and curves: how a PNG draws them (axes, and the "
                                    "family's truth behind the samples)")

    @property
    def images(self) -> bool:
        """Whether the model makes images (else numbers, or translations)."""
        return self.kind == "image"

    @property
    def score_name(self) -> str:
        """What the discriminator's score is, for the X-Ranking header (ASCII)."""
        return self.ranking.score if self.ranking is not None else Ranking().score

    @classmethod
    def load(cls, path: Path) -> "Card":
        """The card in a version folder (or at a card.json path); CardError names what is wrong."""
        path = Path(path)
        path = path / "card.json" if path.is_dir() else path
        try:
            raw = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise CardError(f"card.json: not readable JSON ({type(exc).__name__})") from None
        if not isinstance(raw, dict):
            raise CardError(f"card.json: must be a JSON object, got {type(raw).__name__}")
        for name in _KIND_FIELDS[raw.get("kind") == "translation"]:  # named here: pydantic's own message has no field
            if raw.get(name) is None:
                raise CardError(f"card.{name}: Field required for kind {raw.get('kind')!r}")
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "card"
            raise CardError(f"card.{field}: {first['msg']}") from None

    def save(self, folder: Path) -> Path:
        path = Path(folder) / "card.json"
        path.write_text(self.model_dump_json(indent=2, exclude_none=False) + "\n")
        return path

_KIND_FIELDS = {False: ("latent", "sample_shape"), True: ("domains",)}


def fits(onnx_shape, card_shape: list[int]) -> bool:
    """Symbolic ONNX dimensions (names, None) match anything; fixed ones must be equal."""
    return len(onnx_shape) == len(card_shape) and all(
        not isinstance(a, int) or a == b for a, b in zip(onnx_shape, card_shape))


def expect(ok: bool, field: str, message: str) -> None:
    if not ok:
        raise CardError(f"card.{field}: {message}")
