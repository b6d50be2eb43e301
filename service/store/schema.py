"""Creating and upgrading the schema (Alembic, migrations shipped in service/store/migrations).

A fresh database gets the schema on first use, under a lock so two processes starting together do not both
create it. An older schema is upgraded at start only in the embedded store (one machine, nothing else reads
it); a PostgreSQL schema is upgraded by `ganserve migrate`, once, before new processes start, as operators of
Airflow (`airflow db migrate`) or MLflow (`mlflow db upgrade`) expect.
"""
from __future__ import annotations

import contextlib
import fcntl
from importlib import resources
from pathlib import Path
from typing import Iterator

from sqlalchemy import Connection, Engine, text

LOCK_KEY = 0x67616E73  # "gans": the PostgreSQL advisory lock held while the schema changes


class SchemaOutdated(RuntimeError):
    """The database's schema is older (or newer) than this code's: run `ganserve migrate` (or upgrade the code)."""


def _config(connection: Connection):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(resources.files("service.store") / "migrations"))
    config.attributes["connection"] = connection
    return config


def head() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config(None)).get_current_head()


def current(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


@contextlib.contextmanager
def _locked(engine: Engine) -> Iterator[Connection]:
    """A connection holding the migration lock: an advisory lock (PostgreSQL), a lock file beside the database
    (SQLite)."""
    if engine.dialect.name == "sqlite":
        path = Path(engine.url.database).with_suffix(".migrate.lock")
        with open(path, "a") as lock, engine.connect() as connection:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield connection
        return
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": LOCK_KEY})
        connection.commit()
        try:
            yield connection
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": LOCK_KEY})
            connection.commit()


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Upgrade the schema to this code's head; returns (from, to)."""
    from alembic import command

    with _locked(engine) as connection:
        before = current(connection)
        connection.commit()
        command.upgrade(_config(connection), "head")
        connection.commit()
    return before, head()


def ensure(engine: Engine, upgrade_outdated: bool) -> None:
    """A schema this code can use: created when there is none, upgraded when older if `upgrade_outdated`, else
    SchemaOutdated naming the command to run."""
    with engine.connect() as connection:
        found = current(connection)
    wanted = head()
    if found == wanted:
        return
    if found is None or upgrade_outdated:
        upgrade(engine)
        return
    raise SchemaOutdated(f"the store's schema is at revision {found}, this code needs {wanted}: "
                         "run `ganserve migrate` (or run the code that matches the database)")
