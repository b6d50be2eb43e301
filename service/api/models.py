"""The model repository: models, versions and cards; forced reload."""
from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from service.api.deps import RepositoryDep, SettingsDep
from service.api.health import limits

router = APIRouter(prefix="/v1/models", tags=["models"])


@router.get("")
def list_models(repository: RepositoryDep, settings: SettingsDep) -> dict:
    return {"models": [repository.describe(name) for name in repository.names()], "limits": limits(settings)}


@router.get("/{name}")
def get_model(name: str, repository: RepositoryDep, version: int | None = None) -> dict:
    described = repository.describe(name)
    if version is not None:
        described["card"] = repository.get(name, version).card.model_dump()
    return described


@router.post("/{name}/reload")
async def reload_model(name: str, repository: RepositoryDep) -> dict:
    """Rescan now instead of waiting for the watcher; a version that fails to load is reported."""
    loaded = await run_in_threadpool(repository.refresh, name)
    return {**repository.describe(name), "loaded": [v for _, v in loaded]}
