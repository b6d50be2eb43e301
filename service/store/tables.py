"""The store's tables (SQLAlchemy Core): what the migrations create and every query names.

Timestamps are UTC (`UTC` below). Owners are the key's id as the API computes it (never the key). Large bytes
(ONNX files, upload data) sit in `blob_parts` only when the store keeps artifacts in the database (PostgreSQL);
the embedded store keeps them as files and leaves `blob` NULL.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import (JSON, BigInteger, Boolean, Column, DateTime, ForeignKey, Index, Integer, LargeBinary,
                        MetaData, String, Table, Text, TypeDecorator)

# Named constraints, so migrations can refer to them on every database (SQLite batch mode needs names).
metadata = MetaData(naming_convention={
    "ix": "ix_%(table_name)s_%(column_0_N_name)s", "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s", "pk": "pk_%(table_name)s"})


class UTC(TypeDecorator):
    """An aware UTC datetime in, an aware UTC datetime out, on databases with and without time zones."""
    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        value = value.astimezone(dt.timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)


Owner = String(64)  # "key:<hash>" or "addr:<address>": who made a job, an upload or a version

# One row: a counter every change to versions or aliases raises, so processes notice changes with one read.
revision = Table(
    "revision", metadata,
    Column("id", Integer, primary_key=True),
    Column("value", BigInteger, nullable=False),
)

# A large value split into parts (8 MiB each), so neither side holds it twice in memory.
blobs = Table(
    "blobs", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("created", UTC, nullable=False),
)
blob_parts = Table(
    "blob_parts", metadata,
    Column("blob", Integer, ForeignKey("blobs.id", ondelete="CASCADE"), primary_key=True),
    Column("part", Integer, primary_key=True),
    Column("data", LargeBinary, nullable=False),
)

# A model name: who published it first, and the next version number (never lowered: numbers are not reused).
models = Table(
    "models", metadata,
    Column("name", String(128), primary_key=True),
    Column("next_version", Integer, nullable=False),
    Column("owner", Owner),
    Column("created", UTC, nullable=False),
)

# Every version ever published; a deleted one stays as a tombstone (state "deleted") so its number is never reused.
versions = Table(
    "versions", metadata,
    Column("name", String(128), ForeignKey("models.name"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("state", String(16), nullable=False),  # "live" or "deleted"
    Column("card", JSON, nullable=False),
    Column("owner", Owner),
    Column("job", String(32)),
    Column("promoted", Boolean, nullable=False),
    Column("created", UTC, nullable=False),
    Column("deleted", UTC),
)
version_files = Table(
    "version_files", metadata,
    Column("name", String(128), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("file", String(128), primary_key=True),
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("blob", Integer, ForeignKey("blobs.id")),
)

# Aliases of a model (default, best, ...); a shipped version may be named too (numbers are unique across both).
aliases = Table(
    "aliases", metadata,
    Column("name", String(128), ForeignKey("models.name"), primary_key=True),
    Column("alias", String(32), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("owner", Owner),
    Column("updated", UTC, nullable=False),
)

# Whoever is charged for jobs and uploads: one row to lock, so "count, check the limit, insert" is one transaction.
owners = Table(
    "owners", metadata,
    Column("id", Owner, primary_key=True),
    Column("created", UTC, nullable=False),
)

# Job records: what is filtered and sorted on as columns, the progress history (the bulk of a record) as its own
# JSON column, the rest (config, progress, snapshots list, result...) as one JSON body.
jobs = Table(
    "jobs", metadata,
    Column("id", String(32), primary_key=True),
    Column("owner", Owner, nullable=False),
    Column("state", String(16), nullable=False),
    Column("model", String(128), nullable=False),
    Column("created", UTC, nullable=False),
    Column("started", UTC),
    Column("finished", UTC),
    Column("heartbeat", UTC),
    Column("cancel_requested", Boolean, nullable=False),
    Column("requeued", Integer, nullable=False),
    Column("history", JSON, nullable=False),  # apart from the body: listings leave it unread
    Column("body", JSON, nullable=False),
    Index("ix_jobs_created_id", "created", "id"),
    Index("ix_jobs_state_created_id", "state", "created", "id"),
    Index("ix_jobs_owner_created_id", "owner", "created", "id"),
    Index("ix_jobs_finished", "finished"),
)
job_snapshots = Table(
    "job_snapshots", metadata,
    Column("job", String(32), ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("step", Integer, primary_key=True),
    Column("png", LargeBinary, nullable=False),
)

uploads = Table(
    "uploads", metadata,
    Column("id", String(32), primary_key=True),
    Column("owner", Owner, nullable=False),
    Column("filename", Text, nullable=False),
    Column("n", Integer, nullable=False),
    Column("shape", JSON, nullable=False),
    Column("classes", JSON),
    Column("labelled", Boolean, nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("skipped", Integer, nullable=False),  # metadata entries the archive held (__MACOSX/, dot-files)
    Column("sha256", String(64), nullable=False),
    Column("blob", Integer, ForeignKey("blobs.id")),
    Column("created", UTC, nullable=False),
    Index("ix_uploads_created_id", "created", "id"),
    Index("ix_uploads_owner_created_id", "owner", "created", "id"),
)
