"""Owners: one row per key id (or client address), locked while a limit is checked against its jobs or uploads."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from service.store.tables import owners


def lock_owner(db: Connection, owner: str) -> None:
    """Create the owner's row if needed and lock it until the transaction ends (PostgreSQL: FOR UPDATE; SQLite's
    writing transactions hold the database's one write lock already)."""
    insert = pg_insert if db.dialect.name == "postgresql" else sqlite_insert
    db.execute(insert(owners).values(id=owner, created=dt.datetime.now(dt.timezone.utc)).on_conflict_do_nothing())
    db.execute(select(owners.c.id).where(owners.c.id == owner).with_for_update())
