"""Uploads in the store: metadata, owner and size as rows; the data as a file here or a blob in the database.
The quota check and the insert are one transaction, so concurrent uploads cannot all pass a check that only
one of them fits.
"""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, and_, delete, func, insert, or_, select

from service.jobs.protocol import is_id
from service.store.artifacts import FolderArtifacts
from service.store.engine import transaction
from service.store.owners import lock_owner
from service.store.records import after, cursor_of, parse_time, show_time
from service.store.tables import uploads

SHOWN = ("id", "filename", "n", "shape", "classes", "labelled", "owner", "bytes", "skipped", "sha256")


class UnknownUpload(LookupError):
    """No upload with that id (for this owner)."""


class QuotaExceeded(RuntimeError):
    """Storing the upload would pass its owner's quota; `used` bytes are held already."""

    def __init__(self, used: int):
        super().__init__(used)
        self.used = used


def _meta(row) -> dict:
    return {**{name: getattr(row, name) for name in SHOWN}, "created": show_time(row.created)}


class Uploads:
    def __init__(self, engine: Engine, artifacts: FolderArtifacts):
        self.engine, self.artifacts = engine, artifacts

    def add(self, meta: dict, data: Path, quota: int | None = None) -> dict:
        """Keep an upload's data file (moved from `data`) and its metadata (id, owner, bytes ...), if its owner's
        uploads plus `meta["bytes"]` stay within `quota`."""
        owner = meta["owner"]
        with transaction(self.engine, write=True) as db:
            lock_owner(db, owner)
            used = db.scalar(select(func.coalesce(func.sum(uploads.c.bytes), 0)).where(uploads.c.owner == owner))
            if quota is not None and used + meta["bytes"] > quota:
                raise QuotaExceeded(int(used))
            sha256, _, blob = self.artifacts.keep_upload(db, meta["id"], data)
            row = {name: meta.get(name) for name in SHOWN if name != "sha256"}
            row["skipped"] = row["skipped"] or 0
            db.execute(insert(uploads).values(**row, sha256=sha256, blob=blob, created=parse_time(meta["created"])))
        return {**meta, "sha256": sha256}

    def get(self, upload_id: str, owner: str | None = None) -> dict:
        return _meta(self._row(upload_id, owner))

    def _row(self, upload_id: str, owner: str | None):
        if not is_id(upload_id):
            raise UnknownUpload(f"unknown upload {upload_id[:40]!r}")
        with transaction(self.engine) as db:
            row = db.execute(select(uploads).where(uploads.c.id == upload_id)).first()
        if row is None or (owner is not None and row.owner != owner):
            raise UnknownUpload(f"unknown upload {upload_id!r}")
        return row

    def path(self, upload_id: str) -> Path:
        """The upload's data as a local file (fetched from the database first, when it lives there)."""
        row = self._row(upload_id, None)
        return self.artifacts.upload_path(row.id, row.sha256, row.blob)

    def page(self, owner: str | None = None, limit: int = 50, cursor: str | None = None) -> tuple[list[dict], str | None]:
        """Up to `limit` uploads, newest first, after `cursor`; and the next page's cursor (None at the end)."""
        query = select(uploads).order_by(uploads.c.created.desc(), uploads.c.id.desc()).limit(limit + 1)
        if owner is not None:
            query = query.where(uploads.c.owner == owner)
        if cursor:
            created, key = after(cursor)
            query = query.where(or_(uploads.c.created < created, and_(uploads.c.created == created, uploads.c.id < key)))
        with transaction(self.engine) as db:
            rows = db.execute(query).all()
        more = len(rows) > limit
        rows = rows[:limit]
        return [_meta(r) for r in rows], (cursor_of(rows[-1].created, rows[-1].id) if more else None)

    def used(self, owner: str) -> int:
        """The bytes an owner's uploads hold."""
        with transaction(self.engine) as db:
            return int(db.scalar(select(func.coalesce(func.sum(uploads.c.bytes), 0)).where(uploads.c.owner == owner)))

    def delete(self, upload_id: str, owner: str | None = None) -> None:
        """Remove an upload (its row and its data: one transaction, then the local file)."""
        row = self._row(upload_id, owner)
        with transaction(self.engine, write=True) as db:
            db.execute(delete(uploads).where(uploads.c.id == upload_id))
            self.artifacts.drop_upload(db, row.blob)
        self.artifacts.forget_upload(upload_id)
