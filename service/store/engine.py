"""The database behind the store: its URL, an engine tuned per dialect, and transactions that say what they do.

SQLite (the embedded default, a file in GANSERVE_DATA) runs in WAL mode, so readers never wait for the writer;
a writing transaction starts with BEGIN IMMEDIATE, so two writers queue for the lock instead of one failing
half-way when it tries to upgrade a read lock. PostgreSQL (psycopg 3) runs at READ COMMITTED; a writing
transaction that checks before it changes locks the row it checks against (SELECT ... FOR UPDATE).
"""
from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path
from typing import Callable, Iterator, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError

log = logging.getLogger(__name__)
T = TypeVar("T")
FILE = "ganserve.db"  # the embedded store, in GANSERVE_DATA


class StoreUnavailable(RuntimeError):
    """The database does not answer (restarting, unreachable, locked too long): 503, try again shortly."""
    retry_after = 2


def database_url(configured: str, data: Path) -> str:
    """The URL to use: GANSERVE_DATABASE_URL as given (postgresql:// means psycopg 3), else SQLite in `data`."""
    if not configured:
        return f"sqlite:///{Path(data).resolve() / FILE}"
    url = make_url(configured)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    return url.render_as_string(hide_password=False)


def public_url(url: str) -> str:
    """A URL as logs and messages may show it: never its password."""
    return make_url(url).render_as_string(hide_password=True)


def make_engine(url: str) -> Engine:
    if make_url(url).get_backend_name() == "sqlite":
        Path(make_url(url).database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    # pre_ping: a connection the server dropped (a restart) is replaced before use instead of failing a request.
    return create_engine(url, pool_pre_ping=True, pool_size=4, max_overflow=8, pool_recycle=1800,
                         connect_args={"connect_timeout": 3})


def _sqlite_connect(dbapi_connection, _record) -> None:
    dbapi_connection.isolation_level = None  # the driver's own BEGIN is off: _sqlite_begin says which kind
    cursor = dbapi_connection.cursor()
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "busy_timeout=30000"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    write = connection.get_execution_options().get("write", False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


@contextlib.contextmanager
def transaction(engine: Engine, write: bool = False) -> Iterator[Connection]:
    """One transaction: committed when the block ends, rolled back if it raises. `write`: it will change rows
    (SQLite takes the write lock at once). A database that does not answer is StoreUnavailable."""
    try:
        with engine.connect() as connection:
            if write:
                connection = connection.execution_options(write=True)
            with connection.begin():
                yield connection
    except OperationalError as exc:
        log.warning("store: %s", str(exc.orig).splitlines()[0] if exc.orig else exc)
        raise StoreUnavailable("the store (database) is not answering; try again shortly") from None
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise StoreUnavailable("the store (database) connection was lost; try again shortly") from None
        raise


def retrying(action: Callable[[], T], seconds: float, what: str) -> T:
    """`action` again (backing off to 2 s) while the store is unavailable, for up to `seconds`; for the writes a
    worker must not lose (a job's outcome) while the database restarts."""
    deadline, pause = time.monotonic() + seconds, 0.1
    while True:
        try:
            return action()
        except StoreUnavailable:
            if time.monotonic() > deadline:
                raise
            log.warning("%s: the store is not answering; trying again in %.1f s", what, pause)
            time.sleep(pause)
            pause = min(2.0, pause * 2)
