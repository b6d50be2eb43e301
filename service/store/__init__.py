"""The one source of truth: job records, uploads, model versions and aliases in a transactional store.

SQLite in GANSERVE_DATA by default (one machine, nothing to set up); PostgreSQL when GANSERVE_DATABASE_URL names
one, so API processes and workers on different machines share only Redis and the database. Nothing here is
opened at import time: `open_store(settings)` builds it.

    store.jobs      job records (service/store/jobs.py)
    store.uploads   uploads: metadata, owner, size, data (service/store/uploads.py)
    store.versions  model versions, tombstones, aliases, the change counter (service/store/versions.py)
"""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from service.store import schema
from service.store.artifacts import DatabaseArtifacts, FolderArtifacts
from service.store.engine import StoreUnavailable, database_url, make_engine, public_url, transaction
from service.store.jobs import JobRecords, TooManyQueued, UnknownJob
from service.store.records import BadCursor
from service.store.uploads import QuotaExceeded, UnknownUpload, Uploads
from service.store.versions import NotOwner, UnknownVersion, Version, Versions

__all__ = ["Store", "open_store", "StoreUnavailable", "UnknownJob", "UnknownUpload", "UnknownVersion", "NotOwner",
           "TooManyQueued", "QuotaExceeded", "BadCursor", "Version"]


class Store:
    def __init__(self, url: str, repository: Path, data: Path):
        self.url = url
        self.engine = make_engine(url)
        embedded = self.engine.dialect.name == "sqlite"
        self.artifacts = (FolderArtifacts if embedded else DatabaseArtifacts)(self.engine, repository, data)
        self.jobs = JobRecords(self.engine)
        self.uploads = Uploads(self.engine, self.artifacts)
        self.versions = Versions(self.engine, self.artifacts)

    @property
    def kind(self) -> str:
        """'sqlite' or 'postgresql'."""
        return self.engine.dialect.name

    def describe(self) -> str:
        return f"{self.kind} at {public_url(self.url)}"

    def ensure_schema(self) -> None:
        """Create the schema on a fresh database; upgrade an older one only when embedded (see schema.py)."""
        try:
            schema.ensure(self.engine, upgrade_outdated=self.kind == "sqlite")
        except OperationalError as exc:
            raise StoreUnavailable(f"the store ({self.describe()}) is not answering: "
                                   f"{str(exc.orig or exc).splitlines()[0]}") from None

    def ping(self) -> bool:
        """Whether the database answers a trivial query now."""
        try:
            with transaction(self.engine) as db:
                db.execute(text("SELECT 1"))
            return True
        except StoreUnavailable:
            return False

    def close(self) -> None:
        self.engine.dispose()


def open_store(settings, ensure: bool = True) -> Store:
    """The store the settings name (GANSERVE_DATABASE_URL, else SQLite in GANSERVE_DATA), its schema ready."""
    store = Store(database_url(settings.database_url, settings.data), settings.writable_repository, settings.data)
    if ensure:
        store.ensure_schema()
    return store
