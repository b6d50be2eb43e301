"""The model repository over HTTP: models, versions with their cards and lineage, aliases, retention, reload."""
from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Path, UploadFile
from pydantic import BaseModel, ConfigDict, Field, StrictInt
from starlette.concurrency import run_in_threadpool

from service.api.deps import CallerDep, KeyDep, RepositoryDep, SettingsDep, StoreDep
from service.api.health import limits
from service.api.responses import Limits, error_responses
from service.api.strict import StrictJSONRoute
from service import formats
from service.formats.pictures import EncodingError
from service.repository import Card, Model, Repository, Threads, UnknownModel, imports
from service.sampling.modes import MODES
from service.sampling.samples import SamplingError
from service.repository.card import Gate, Lineage
from service.repository.store import Conflict

router = APIRouter(prefix="/v1/models", tags=["models"], responses=error_responses(404, 422),
                   route_class=StrictJSONRoute)
KEYED = error_responses(401, 403, 404, 409, 422)
AliasName = Annotated[str, Path(pattern=r"^[a-z][a-z0-9_-]{0,31}$", description="e.g. default")]


class VersionView(BaseModel):
    version: int
    source: str = Field(description="'writable' (published by a job or offline run) or 'shipped' (read-only)")
    loaded: bool
    error: str | None = None
    promoted: bool | None = None
    gate: Gate | None = None
    lineage: Lineage | None = None
    created: str | None = None
    threads: dict[str, Threads] | None = Field(None, description="loaded versions: each network's onnxruntime "
                                               "provider (GANSERVE_ORT_PROVIDERS, the first this machine has) and "
                                               "threads, chosen at load by measuring them (GANSERVE_ORT_THREADS=0)")


class ModelView(BaseModel):
    name: str
    default: int | None = Field(description="the version unversioned requests get")
    latest: int | None = Field(description="the highest version that loads")
    versions: list[int]
    aliases: dict[str, int]
    errors: dict[str, str] = Field(description="version -> why it does not load")
    card: Card | None = Field(description="the default version's card (or the requested version's)")
    modes: list[str] = Field(default_factory=list, description="the sampling modes that version can be sampled in")
    formats: dict[str, list[str]] = Field(default_factory=dict, description="route -> the formats that version can "
                                          "be answered in (samples, datasets; translate for translation models)")
    version_details: list[VersionView]


class ModelList(BaseModel):
    models: list[ModelView]
    limits: Limits


class AliasRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: Annotated[StrictInt, Field(ge=1)]


def view(repository: Repository, name: str, version: int | None = None, settings=None) -> ModelView:
    """A model as /v1/models shows it (it may load a version or the filter's classifier: call it off the loop)."""
    entry = repository.entry(name)
    shown = version if version is not None else entry.default
    details = []
    for v in sorted(entry.folders):
        card = entry.card(v)
        details.append(VersionView(
            version=v, source="shipped" if repository.is_shipped(entry.folders[v]) else "writable",
            loaded=v in entry.loaded, error=entry.errors.get(v), promoted=card.promoted if card else None,
            gate=card.gate if card else None, lineage=card.lineage if card else None,
            created=card.created if card else None,
            threads=entry.loaded[v].threads() if v in entry.loaded else None))
    try:
        model = repository.get(name, shown) if shown is not None else None
    except UnknownModel:
        if version is not None:
            raise
        model = None  # the default went away meanwhile (a concurrent delete or move): shown without its card
    return ModelView(name=name, default=entry.default, latest=entry.latest, versions=sorted(entry.folders),
                     aliases=entry.aliases, errors={str(v): e for v, e in entry.errors.items()},
                     card=model.card if model else None, version_details=details,
                     modes=supported_modes(model, settings) if model else [], formats=supported_formats(model) if model else {})


def supported_modes(model: Model, settings=None) -> list[str]:
    """The modes whose checks the model passes, and (with settings) whose aid takes it: filtered's classifier
    must know its labels and sample shape."""
    if "samples" not in model.kind.routes:
        return []
    out = []
    for name, mode in MODES.items():
        try:
            mode.check(model)
            if mode.loads and settings is not None:
                mode.prepare(model, None, settings)
        except SamplingError:
            continue
        out.append(name)
    return out


def supported_formats(model: Model) -> dict[str, list[str]]:
    out = {}
    for route in model.kind.routes:
        fits = []
        for name in formats.names(route):
            try:
                formats.FORMATS[name].check(route, model.card.images, model.card.kind)
            except EncodingError:
                continue
            fits.append(name)
        out[route] = fits
    return out


@router.get("", operation_id="listModels", response_model=ModelList, responses=error_responses())
def list_models(repository: RepositoryDep, settings: SettingsDep) -> ModelList:
    """Every model: its default and versions, aliases, load errors and the default's card."""
    return ModelList(models=[view(repository, name, settings=settings) for name in repository.names()],
                     limits=limits(settings))


@router.get("/{name}", operation_id="getModel", response_model=ModelView)
def get_model(name: str, repository: RepositoryDep, settings: SettingsDep, version: int | None = None) -> ModelView:
    """One model; `?version=` shows that version's card instead of the default's."""
    return view(repository, name, version, settings)


@router.post("/{name}/reload", operation_id="reloadModel", response_model=ModelView, dependencies=[KeyDep],
             responses=KEYED)
async def reload_model(name: str, repository: RepositoryDep, settings: SettingsDep) -> ModelView:
    """Rescan now instead of waiting for the watcher; a version that fails to load is reported."""
    await run_in_threadpool(repository.refresh, name)
    return await run_in_threadpool(view, repository, name, None, settings)


@router.put("/{name}/aliases/{alias}", operation_id="moveAlias", response_model=ModelView, dependencies=[KeyDep],
            responses=KEYED)
async def move_alias(name: str, alias: AliasName, body: AliasRequest, repository: RepositoryDep,
                     store: StoreDep, caller: CallerDep, settings: SettingsDep) -> ModelView:
    """Point an alias (e.g. `default`) at a version that loads; every API process follows within a second.
    The model's owner's (a shipped model's: an admin's). The store moves it in one transaction that fails (404)
    if the version was deleted meanwhile."""
    # What the store holds now, not at this process's last poll: a version another host published a moment ago.
    await run_in_threadpool(repository.refresh, name)
    model = await run_in_threadpool(repository.get, name, body.version)  # 404 unless it exists and loads
    folder = repository.entry(name).folders.get(model.version)
    shipped = folder is not None and repository.is_shipped(folder)
    await run_in_threadpool(store.versions.move_alias, name, alias, model.version, shipped, caller.sees)
    await run_in_threadpool(repository.refresh, name)
    return await run_in_threadpool(view, repository, name, None, settings)


@router.delete("/{name}/versions/{version}", operation_id="deleteVersion", response_model=ModelView,
               dependencies=[KeyDep], responses=KEYED)
async def delete_model_version(name: str, version: int, repository: RepositoryDep, store: StoreDep,
                               caller: CallerDep, settings: SettingsDep):
    """Remove a job-made version that no alias points at; shipped versions are read-only (409). The store keeps
    a tombstone: the number is never given to another version. Every API process unloads it within a second."""
    entry = repository.entry(name)
    if version in entry.folders and repository.is_shipped(entry.folders[version]):
        raise Conflict(f"version: {name} {version} is shipped in a read-only folder; only job-made versions "
                       "can be deleted")
    # The default is never deleted, alias or not (an implicit default is this process's newest good version).
    await run_in_threadpool(store.versions.delete, name, version, entry.default, caller.sees)
    await run_in_threadpool(repository.refresh, name)
    return await run_in_threadpool(view, repository, name, None, settings)


ModelName = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$", description="the name to publish under")]


@router.post("/{name}/versions", status_code=201, operation_id="importModel", response_model=ModelView,
             dependencies=[KeyDep], responses=error_responses(401, 403, 404, 409, 413, 422))
async def import_model(name: ModelName, repository: RepositoryDep, settings: SettingsDep, store: StoreDep,
                       caller: CallerDep,
                       generator: Annotated[UploadFile, File(description="the generator's ONNX file")],
                       discriminator: Annotated[UploadFile | None, File(description="its discriminator's ONNX "
                                                                         "file: nice and rejection need it")] = None,
                       latent: Annotated[Literal["normal", "uniform"], Form(description="the distribution z was drawn "
                                                                             "from in training")] = "normal",
                       labels: Annotated[str | None, Form(max_length=10_000, description="comma-separated label "
                                                          "names, where the generator takes labels")] = None,
                       description: Annotated[str, Form(max_length=2_000)] = "",
                       promote: Annotated[bool | None, Form(description="make it the default; default: only for "
                                                            "a new name")] = None) -> ModelView:
    """A GAN trained elsewhere, published as a new version: the latent width, labels, sample shape and value range
    read from the graph and a probe run, the card checked against the files as every version is. The model is
    the key's (an existing name must be the key's own)."""
    shipped = any((folder / name).is_dir() for folder in repository.folders[1:])
    await run_in_threadpool(store.versions.check_publisher, name, caller.sees, shipped)
    g_bytes = await generator.read()  # the guard bounded the whole body by max_upload_bytes
    d_bytes = await discriminator.read() if discriminator is not None else None
    names = [label.strip() for label in labels.split(",")] if labels else None
    model = await run_in_threadpool(imports.inspect, g_bytes, name, latent, names, d_bytes, description)
    promote = await run_in_threadpool(store.versions.is_new, name) if promote is None else promote
    await run_in_threadpool(imports.publish, model, store.versions, settings.writable_repository,
                            repository.folders[1:], promote, caller.id, caller.admin)
    await run_in_threadpool(repository.refresh, name)
    return await run_in_threadpool(view, repository, name, model.card.version, settings)
