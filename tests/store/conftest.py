"""The store on both databases: SQLite (a file of the test's own) and PostgreSQL (a database of the test's own on
the suite's server, GANSERVE_DATABASE_URL's or the machine's at 127.0.0.1:5432), dropped afterwards."""
from __future__ import annotations

import shutil

import pytest

from tests.utils import SUITE_DATABASE, create_database, drop_database

PG_SERVER = SUITE_DATABASE or "postgresql://postgres@127.0.0.1:5432/postgres"
KINDS = [pytest.param("sqlite", marks=pytest.mark.unit, id="sqlite"),
         pytest.param("postgresql", marks=pytest.mark.system, id="postgresql")]


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    """An empty SQLite store made once (the migrations take ~0.3 s); each test gets a copy."""
    from service.store import Store
    from service.store.engine import database_url

    folder = tmp_path_factory.mktemp("sqlite-template")
    template = Store(database_url("", folder), folder / "models", folder)
    template.ensure_schema()
    template.close()  # the last connection closed: the write-ahead log is folded into the file
    assert not (folder / "ganserve.db-wal").exists()
    return folder / "ganserve.db"


@pytest.fixture
def database(request, tmp_path):
    """A fresh, empty store URL of the kind the test is parametrized with ("" for SQLite in tmp_path)."""
    if request.param == "sqlite":
        shutil.copyfile(request.getfixturevalue("sqlite_template"), tmp_path / "ganserve.db")
        yield ""
        return
    url = create_database(PG_SERVER)
    yield url
    drop_database(url)


@pytest.fixture
def store(database, tmp_path):
    from service.store import Store
    from service.store.engine import database_url

    opened = Store(database_url(database, tmp_path), tmp_path / "models", tmp_path)
    opened.ensure_schema()
    yield opened
    opened.close()
