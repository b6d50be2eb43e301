"""Settings: environment variables with the GANSERVE_ prefix; defaults run on one machine."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GANSERVE_")

    # Model repository folders, ':'-separated; the first is writable (jobs publish there).
    repository: str = "var/models:models"
    data: Path = Path("var")  # job records, uploads, snapshots
    redis_url: str = "redis://127.0.0.1:6379/0"
    # The store of job records, uploads, versions and aliases: empty means SQLite in `data` (one machine);
    # postgresql://user@host/db for API processes and workers on several machines.
    database_url: str = ""
    store_poll_seconds: float = 0.25  # how often each API process asks the store whether versions or aliases changed
    job_retention_days: float = 30.0  # finished job records older than this are pruned; 0 keeps them forever
    api_keys: str = ""  # comma-separated; job submission needs one when set
    admin_keys: str = ""  # comma-separated keys that may also act on every key's jobs, uploads and models
    reload_seconds: float = 1.0  # how often the repository is rescanned for new versions

    max_n: int = 1024  # samples per request
    max_oversample: int = 50  # candidates per kept sample in `nice`
    max_candidates: int = 16384  # n × oversample per request, the budget of nice and rejection (≈ 51 MB of MNIST)
    max_grid: int = 4096  # cells of a png grid (rows × cols)
    max_dataset_n: int = 100_000  # samples per POST /v1/datasets (streamed in chunks)
    max_dataset_candidates: int = 2_000_000  # n × oversample per dataset in nice mode (a few minutes of work)
    max_dataset_streams: int = 8  # datasets streaming at once per API process; 503 with Retry-After beyond
    dataset_workers: int = 2  # threads computing dataset chunks (apart from every other route's)
    write_seconds: float = 30.0  # a streamed response's write must complete within this: a stalled reader is dropped
    max_steps: int = 200_000  # training steps per job
    max_job_seconds: float = 3600.0  # a job running longer is stopped and fails
    # Bytes one job may hold: a job estimated past it is refused at submission (its family's params name why), and
    # a worker runs each job in a process capped at it (RLIMIT_DATA), so one that still overruns fails alone.
    # 8 GiB: the image families up to 64 px at their default widths fit (docs/limits.md); larger asks for more.
    max_job_memory: int = 8 * 2**30
    job_lost_seconds: float = 30.0  # a running job with no worker heartbeat this long has failed
    reconcile_seconds: float = 30.0  # how often queued jobs are checked against the broker's messages
    max_upload_bytes: int = 64 * 2**20  # one upload, as sent
    max_body_bytes: int = 16 * 2**20  # any other request body (JSON; explicit latents are the largest)
    rate_per_second: float = 200.0  # requests a second per API key (or client address); 0: unlimited
    rate_burst: int = 400  # requests a client may send at once before the rate applies
    max_queued_jobs: int = 100  # jobs queued per API key (or client address, without keys); 429 beyond
    body_seconds: float = 60.0  # a request's whole body must arrive within this (slow senders get 408)
    header_seconds: float = 10.0  # a request's head must arrive within this of the connection (or the last answer)
    keep_alive_seconds: float = 5.0  # an idle keep-alive connection is closed after this
    max_connections: int = 4000  # open connections per API process; beyond, 503 at once (held below the file limit)
    max_upload_files: int = 70_000  # images per upload
    max_image_pixels: int = 1024 * 1024  # per image (decompression bombs are refused before decoding)
    max_upload_pixels: int = 100_000_000  # all images of one upload together, every channel counted
    max_storage_bytes: int = 2 * 2**30  # what one API key's uploads may hold on disk (507 beyond)
    max_upload_inflated_bytes: int = 256 * 2**20  # an upload's arrays (and zip entries) as they inflate, before conversion
    max_upload_classes: int = 1000  # labels of an upload (or training source) are class indices 0..this-1
    max_translate_bytes: int = 16 * 2**20  # one /translate request body, as sent
    max_translate_pixels: int = 16_000_000  # all input images of one /translate request together, decoded
    # Intra-op threads per onnxruntime session. 0: measured per network at load, one thread against one per
    # core, by batch size (repository/sessions.py); n: n threads for every session, not measured.
    ort_threads: int = 0
    processes: int = 1  # API processes sharing this machine (`ganserve serve --workers` sets it): measured
    # sessions get cores ÷ processes threads at most, so the processes do not fight over the cores
    # onnxruntime execution providers, comma-separated, in order of preference: one this machine's onnxruntime
    # lacks is skipped (logged once), the CPU is always the last resort. CUDA needs `pip install 'ganserve[gpu]'`.
    ort_providers: str = "CPUExecutionProvider"
    inline_ms: float = 5.0  # a lone call measured at most this long runs on the event loop, not the lane; 0: never
    # The batcher: most rows merged into one onnxruntime call, and how long a batch waits for requests known to be
    # on their way. 0: the first available provider's default (repository/sessions.py BATCHING: 128 rows and
    # 2 ms on the CPU, 1024 rows and 4 ms on a GPU).
    batch_rows: int = 0
    batch_wait_ms: float = 0.0
    queue_requests: int = 64  # sampling requests in flight per model before answering 503
    max_work_bytes: int = 384 * 2**20  # arrays of the sampling requests being computed at once; beyond, 503
    # Torch threads of a training run. 0: chosen by timing the run's own first steps on one thread and on its
    # share of the cores (cores ÷ train_workers), so a small model or a busy machine gets one (training/hardware.py).
    train_threads: int = 0
    train_workers: int = 1  # training workers sharing this machine's cores, at least (those advertising are counted)
    device: Literal["auto", "cpu", "cuda"] = "auto"  # training: auto (CUDA when torch sees a GPU, else the CPU), cpu or cuda
    cors_origins: str = ""  # comma-separated origins a browser page may call the API from; none by default
    # The filtered mode's classifier (an ONNX file, read, never its training code) and the confidence in
    # the requested label a sample needs to be kept; a request's `threshold` overrides it.
    filter_classifier: Path = Path("training/assets/mnist-classifier/classifier.onnx")
    filter_threshold: float = 0.9

    @property
    def repositories(self) -> list[Path]:
        return [Path(p) for p in self.repository.split(":") if p]

    @property
    def writable_repository(self) -> Path:
        return self.repositories[0]

    @property
    def providers(self) -> tuple[str, ...]:
        return tuple(p.strip() for p in self.ort_providers.split(",") if p.strip())

    @property
    def keys(self) -> list[str]:
        return [k.strip() for k in self.api_keys.split(",") if k.strip()]

    @property
    def admins(self) -> list[str]:
        return [k.strip() for k in self.admin_keys.split(",") if k.strip()]


@lru_cache
def get_settings() -> Settings:
    return Settings()
