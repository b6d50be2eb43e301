"""Response bodies: what each JSON route answers, and the one error body every route may answer.

They exist for the OpenAPI schema (and the clients generated from it) as much as for the routes:
`error_responses` declares the real `{"error": {...}}` body for each error status a route can give,
in place of FastAPI's own validation-error schema, which this service never sends.
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from service.jobs.protocol import STATES
from service.repository.card import Gate

JobState = Literal[STATES]  # type: ignore[valid-type]


class Problem(BaseModel):
    """One invalid field of a request (validation errors list them all)."""
    model_config = ConfigDict(extra="allow")  # the violated bound: ge, le, gt, lt or expected

    field: str = Field(description="the field, dotted for nested ones (walk.steps, latents.0.3)")
    message: str


class ErrorDetail(BaseModel):
    status: int = Field(description="the HTTP status, again")
    message: str = Field(description="starts with the field when one is at fault, and names the limit")
    field: str | None = Field(None, description="the request field at fault; absent when none is")
    problems: list[Problem] | None = Field(None, description="422 for an invalid request: every problem found")


class ErrorBody(BaseModel):
    """Every error this service answers, 4xx and 5xx alike."""
    error: ErrorDetail


ERRORS = {
    401: "an API key is needed (Authorization: Bearer <key>)",
    403: "the API key is not valid",
    404: "no such model, version, job or upload; the message lists what exists",
    408: "the request's body did not arrive within body_seconds",
    409: "the repository refuses the change in its current state (a shipped or aliased version)",
    429: "over the rate limit, or too many queued jobs; see Retry-After",
    413: "the upload is over the configured limit",
    422: "the request is invalid or over a configured limit; the message names the field and the limit",
    500: "an unexpected error; the message carries a request id to find in the log",
    503: "overloaded (see Retry-After), or the job queue or the store is not answering",
    507: "the API key's uploads hold their storage quota (max_storage_bytes)",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a router or route: the error body for each status, plus 500 which any route may give."""
    return {status: {"model": ErrorBody, "description": ERRORS[status]} for status in sorted({*statuses, 500})}


def content(*media_types: str, text: bool = False) -> dict[str, dict]:
    """A success response's non-JSON content: bytes (or text), so clients read them as files."""
    schema = {"type": "string"} if text else {"type": "string", "format": "binary"}
    return {media_type: {"schema": schema} for media_type in media_types}


def formats_content(route: str) -> dict[str, dict]:
    """A route's success content, one entry per media type of its formats (JSON keeps the route's model).
    `route` may also name one format (samples.png answers png only)."""
    from service import formats

    names = [route] if route in formats.FORMATS else formats.names(route)
    types = sorted({formats.FORMATS[name].media_type for name in names})
    return {t: {} if t == "application/json" else content(t)[t] for t in types}


def late_formats(operation_id: str, route: str) -> None:
    """List a route's formats' media types when the OpenAPI schema is made, so a format registered after
    the route was defined is listed too (service/api/docs.py)."""
    from service.api.docs import late

    @late(operation_id)
    def patch(operation: dict) -> None:
        ok = operation["responses"]["200"]
        json_schema = ok.get("content", {}).get("application/json")
        ok["content"] = formats_content(route)
        if json_schema and "application/json" in ok["content"]:
            ok["content"]["application/json"] = json_schema


class Status(BaseModel):
    status: Literal["ok"]


class Ready(BaseModel):
    status: Literal["ready", "not ready"]
    models: list[str] = Field(description="the names with a default version loaded")
    redis: Literal["up", "down"] = Field(description="the job queue; sampling works without it")
    store: Literal["up", "down"] = Field(description="the database of jobs, uploads, versions and aliases; "
                                         "loaded models keep serving without it")


class Limits(BaseModel):
    """The configured limits every request is checked against before any work."""
    max_n: int = Field(description="samples per request; rows of `latents`; steps of a walk")
    max_oversample: int = Field(description="candidates per kept sample in nice")
    max_candidates: int = Field(description="n × oversample per request")
    max_grid: int = Field(description="cells of a PNG grid")
    max_dataset_n: int = Field(description="samples per dataset")
    max_steps: int = Field(description="training steps per job")
    max_job_seconds: float
    max_job_memory: int = Field(description="bytes one training job may hold (estimated at submission, enforced "
                                            "by the worker)")
    max_upload_bytes: int = Field(description="one upload's (or imported model's) body")
    max_upload_files: int = Field(description="images per upload")
    max_image_pixels: int = Field(description="one image, before it is decoded")
    max_upload_pixels: int = Field(description="all images of one upload together, every channel counted")
    max_upload_inflated_bytes: int = Field(description="an upload's arrays and zip entries as they inflate")
    max_upload_classes: int = Field(description="labels are class indices below this")
    max_translate_bytes: int = Field(description="one /translate request body")
    max_translate_pixels: int = Field(description="the input images of one /translate request together")


class SampledJson(BaseModel):
    """format=json of /samples: samples as numbers (points, curves) or base64 PNGs (images)."""
    model: str
    version: int
    seed: int | None = Field(description="the seed the latents were drawn from; a walk's `from`; null for "
                                         "explicit latents")
    mode: str = Field(description="the mode that chose them (see the request's `mode`)")
    samples: list[list[float]] | list[str] = Field(description="(x, y) points or 15-value curves as numbers; "
                                                   "images as base64 PNGs")
    labels: list[str] | None = Field(None, description="each sample's label (conditional models)")
    scores: list[float] | None = Field(None, description="discriminator logits (nice, rejection); the classifier's "
                                       "confidence in the requested label (filtered)")
    candidates: int | None = Field(None, description="generator samples drawn (nice, rejection, filtered)")
    acceptance_rate: float | None = Field(None, description="rejection, filtered: the share of candidates accepted")
    truncation: float | None = Field(None, description="ψ, when not 1")


class Translated(BaseModel):
    """format=json of /translate: the translated images as base64 PNGs, each with the target critic's score."""
    model: str
    version: int
    direction: Literal["a_to_b", "b_to_a"]
    from_: str = Field(alias="from", description="the source domain's name")
    to: str = Field(description="the target domain's name")
    images: list[str] = Field(description="base64 PNGs, in the order of the inputs")
    scores: list[float] = Field(description="the target domain's discriminator on each output (least squares: "
                                            "near 1 looks real, near 0 looks translated)")


class Param(BaseModel):
    """One hyper-parameter of a family: its type, default and limits."""
    type: Literal["int", "float", "bool", "str"]
    default: Any = None
    help: str = ""
    min: float | None = None
    max: float | None = None
    choices: list[Any] | None = None


class FamilyBar(BaseModel):
    """One bar of a family's quality gate: a metric of a new version's card (mode.key), compared with a limit."""
    metric: str = Field(description="mode.key in the card's metrics, e.g. plain.frechet_ratio")
    op: Literal["<=", ">="]
    limit: float


class Family(BaseModel):
    kind: str = Field(description="what the family's models make: one of the card kinds (points, curves, image, "
                                  "translation)")
    labels: list[str] | None
    description: str
    default_steps: int
    params: dict[str, Param]
    gate: list[FamilyBar] = Field(description="the bars a new version must meet, measured on its family's "
                                              "evaluator, before it may become the default; none: it always may")


class Families(BaseModel):
    families: dict[str, Family]


class Upload(BaseModel):
    """Training data kept whole: its id goes into a job's `data`."""
    id: str
    filename: str
    n: int = Field(description="samples")
    shape: list[int] = Field(description="one sample's shape")
    classes: list[str] | None = Field(description="class names (folders of a zip, or y of an npz), if labelled")
    labelled: bool
    created: str
    skipped: int = Field(0, description="metadata entries of a zip left out (__MACOSX/, dot-files)")


class Uploads(BaseModel):
    data: list[Upload] = Field(description="a page of uploads, newest first")
    next_cursor: str | None = Field(None, description="pass as `cursor` for the next page; null on the last")


class JobConfig(BaseModel):
    """A job's training configuration after validation (the family's defaults filled in)."""
    model_config = ConfigDict(extra="allow")

    family: str
    steps: int
    data: str | dict[str, str] = Field(description="a data source, or a translation family's {a, b} sources")
    params: dict[str, Any]
    model: str
    seed: int
    device: str = Field("auto", description="as submitted: auto (the worker's GANSERVE_DEVICE), cpu or cuda")


class JobProgress(BaseModel):
    step: int
    steps: int | None
    epoch: float
    eta_seconds: float | None


class Snapshot(BaseModel):
    step: int
    file: str
    url: str = Field(description="the sample grid (or plot) as a PNG")


class JobResult(BaseModel):
    model: str
    version: int
    metrics: dict[str, Any] = Field(description="the evaluator's measures, as in the new version's card")
    gate: Gate | None = Field(None, description="the family's quality bars checked on those measures")
    promoted: bool | None = Field(None, description="whether the new version became the model's default")
    message: str | None = Field(None, description="what the job did to the default, in one sentence")


class JobLinks(BaseModel):
    self_: str = Field(alias="self")
    events: str = Field(description="server-sent events of the job's progress")
    model: str | None = Field(None, description="the published version, once succeeded")


class Job(BaseModel):
    id: str
    state: JobState
    family: str
    model: str = Field(description="the name the job publishes under")
    config: JobConfig
    created: str
    started: str | None
    finished: str | None
    heartbeat: str | None
    progress: JobProgress
    latest: dict[str, float | int | None] | None = Field(
        description="the latest progress point: step, epoch, loss_d, loss_g, acc_real, acc_fake, seconds")
    history: list[dict[str, float | int | None]] | None = Field(
        description="progress points for plotting; null in listings unless ?history=true")
    snapshots: list[Snapshot]
    hardware: dict[str, Any] | None = Field(None, description="what the job trains on, once running: device, mixed "
                                            "precision, torch threads and how they were chosen (ms per step of each "
                                            "option timed), cores, workers")
    error: str | None
    result: JobResult | None
    promote: bool | None = Field(None, description="as submitted: make the version the default if it passes its gate")
    requeued: int = Field(0, description="times the job was sent again because the broker had lost its message")
    cancel_requested: bool
    worker: str | None
    links: JobLinks


class Jobs(BaseModel):
    jobs: list[Job] = Field(description="a page of jobs, newest first")
    next_cursor: str | None = Field(None, description="pass as `cursor` for the next page; null on the last")
