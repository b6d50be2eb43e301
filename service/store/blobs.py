"""Large values in the database (PostgreSQL's artifacts): written in parts, read back into a local cache by sha256.

Parts keep memory bounded on both sides (an upload's data may be ~100 MB). A blob belongs to one row (a version's
file, an upload) and is deleted with it, in the same transaction, so no blob is shared and none is collected late.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import os
import uuid
from pathlib import Path

from sqlalchemy import Connection, Engine, delete, insert, select

from service.store.engine import transaction
from service.store.tables import blob_parts, blobs

PART = 8 * 2**20


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(PART):
            digest.update(chunk)
    return digest.hexdigest()


def put(db: Connection, path: Path) -> tuple[int, str, int]:
    """Store a file's bytes as a blob in this transaction; (blob id, sha256, size)."""
    size = path.stat().st_size
    blob = db.execute(insert(blobs).values(sha256="", size=size, created=dt.datetime.now(dt.timezone.utc))
                      .returning(blobs.c.id)).scalar_one()
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for part, chunk in enumerate(iter(lambda: f.read(PART), b"")):
            digest.update(chunk)
            db.execute(insert(blob_parts).values(blob=blob, part=part, data=chunk))
    db.execute(blobs.update().where(blobs.c.id == blob).values(sha256=digest.hexdigest()))
    return blob, digest.hexdigest(), size


def drop(db: Connection, blob: int | None) -> None:
    if blob is not None:
        db.execute(delete(blob_parts).where(blob_parts.c.blob == blob))
        db.execute(delete(blobs).where(blobs.c.id == blob))


def fetch(engine: Engine, blob: int, sha256: str, cache: Path, suffix: str = "") -> Path:
    """The blob as a local file `cache/<sha256><suffix>`, read from the database once; checked against its sha256.
    (`suffix`: what readers that go by the name expect, .npz for an upload's data.)"""
    target = cache / f"{sha256}{suffix}"
    if target.exists():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    tmp = cache / f".{sha256}.{uuid.uuid4().hex}"
    digest = hashlib.sha256()
    try:
        with open(tmp, "wb") as out, transaction(engine) as db:
            count = db.scalar(select(blobs.c.id).where(blobs.c.id == blob))
            if count is None:
                raise FileNotFoundError(f"blob {blob} is no longer in the store (deleted meanwhile)")
            for (data,) in db.execute(select(blob_parts.c.data).where(blob_parts.c.blob == blob)
                                      .order_by(blob_parts.c.part)):
                digest.update(data)
                out.write(data)
        if digest.hexdigest() != sha256:
            raise OSError(f"blob {blob}: its bytes hash to {digest.hexdigest()}, not {sha256}")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target
