"""Settings: environment variables with the GANSERVE_ prefix; defaults run on one machine."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GANSERVE_")

    # Model repository folders, ':'-separated; the first is writable (jobs publish there).
    repository: str = "var/models:models"
    data: Path = Path("var")  # job records, uploads, snapshots
    redis_url: str = "redis://127.0.0.1:6379/0"
    api_keys: str = ""  # comma-separated; job submission needs one when set
    reload_seconds: float = 1.0  # how often the repository is rescanned for new versions

    max_n: int = 1024  # samples per request
    max_oversample: int = 50  # candidates per kept sample in `nice`
    max_candidates: int = 65536  # n × oversample per request
    max_steps: int = 200_000  # training steps per job
    ort_threads: int = 1  # intra-op threads per onnxruntime session
    train_threads: int = 2  # torch threads in a worker

    @property
    def repositories(self) -> list[Path]:
        return [Path(p) for p in self.repository.split(":") if p]

    @property
    def writable_repository(self) -> Path:
        return self.repositories[0]

    @property
    def jobs_dir(self) -> Path:
        return self.data / "jobs"

    @property
    def keys(self) -> list[str]:
        return [k.strip() for k in self.api_keys.split(",") if k.strip()]


@lru_cache
def get_settings() -> Settings:
    return Settings()
