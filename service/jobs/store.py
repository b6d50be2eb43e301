"""Job records on disk (one JSON file each), shared by the API and the workers.

Disk, not Redis, holds the truth so records survive a Redis restart; every read-modify-write
holds an exclusive lock on the record, so the API (cancel) and a worker (progress) never clobber
each other. Files are replaced atomically: a reader never sees half a record.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import uuid
from pathlib import Path
from typing import Iterator

from service.jobs.protocol import is_id, now


class UnknownJob(LookupError):
    """No job with that id."""


class JobStore:
    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def _path(self, job_id: str) -> Path:
        if not is_id(job_id):
            raise UnknownJob(f"unknown job {job_id[:40]!r}")
        return self.folder / f"{job_id}.json"

    def create(self, config: dict, job_id: str | None = None, **fields) -> dict:
        """A new queued record, written whole before anyone can see it."""
        self.folder.mkdir(parents=True, exist_ok=True)
        job_id = job_id or uuid.uuid4().hex
        record = {
            "id": job_id, "state": "queued", "family": config["family"],
            "model": config.get("model") or config["family"], "config": config,
            "created": now(), "started": None, "finished": None, "heartbeat": None,
            "progress": {"step": 0, "steps": config.get("steps"), "epoch": 0.0, "eta_seconds": None},
            "latest": None, "history": [], "snapshots": [], "error": None, "result": None,
            "cancel_requested": False, "worker": None, **fields,
        }
        self._write(record)
        return record

    def read(self, job_id: str) -> dict:
        try:
            return json.loads(self._path(job_id).read_text())
        except FileNotFoundError:
            raise UnknownJob(f"unknown job {job_id!r}") from None

    def list(self, state: str | None = None) -> list[dict]:
        """All records, newest first, optionally of one state."""
        if not self.folder.is_dir():
            return []
        records = []
        for path in self.folder.glob("*.json"):
            try:
                record = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if state is None or record["state"] == state:
                records.append(record)
        return sorted(records, key=lambda r: r["created"], reverse=True)

    def reap(self, lost_after: float) -> list[str]:
        """Fail running jobs whose worker stopped beating (killed, or its machine gone)."""
        reaped = []
        cutoff = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=lost_after)
        for record in self.list("running"):
            if record["heartbeat"] and dt.datetime.fromisoformat(record["heartbeat"]) < cutoff:
                with self.update(record["id"]) as current:
                    beat = current["heartbeat"]
                    if current["state"] == "running" and beat and dt.datetime.fromisoformat(beat) < cutoff:
                        current.update(state="failed", finished=now(),
                                       error=f"worker lost: no heartbeat since {beat} (over {lost_after:g} s)")
                        reaped.append(current["id"])
        return reaped

    def delete(self, job_id: str) -> None:
        self._path(job_id).unlink(missing_ok=True)

    @contextlib.contextmanager
    def update(self, job_id: str) -> Iterator[dict]:
        """Lock, read, let the caller change the record, write it back atomically."""
        path = self._path(job_id)
        self.read(job_id)  # an unknown id is refused before its lock file would be created
        lock_path = path.with_suffix(".lock")
        with open(lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            record = self.read(job_id)
            yield record
            self._write(record)

    def _write(self, record: dict) -> None:
        path = self._path(record["id"])
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(record))
        tmp.replace(path)
