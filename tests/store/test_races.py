"""The races of two API processes on one store, 50 rounds each, on SQLite (one machine, one data folder) and on
PostgreSQL (separate folders): an alias move racing a delete never both succeed, concurrent moves of different
aliases are both kept, and nothing answers 500."""
from __future__ import annotations

import threading

import httpx
import pytest

from tests.store.conftest import PG_SERVER
from tests.utils import create_database, drop_database, open_test_store, publish_tiny, serve, wait_until

pytestmark = pytest.mark.system
ROUNDS = 50


@pytest.fixture(params=["sqlite", "postgresql"])
def pair(request, tmp_path):
    """Two API processes on one store, and a store handle of the test's own to publish with."""
    shipped = tmp_path / "shipped"
    publish_tiny("quadratic", shipped, model="dots")  # shipped v1, the default
    url = create_database(PG_SERVER) if request.param == "postgresql" else ""
    homes = [tmp_path / "a", tmp_path / "a"] if not url else [tmp_path / "a", tmp_path / "b"]
    servers = [serve(shipped, home, database_url=url, reload_seconds=30) for home in homes]
    store = open_test_store(homes[0], url=url, repository=tmp_path / "publisher" if url else None)
    yield servers, store, homes[0] / "models" if not url else tmp_path / "publisher"
    store.close()
    for srv in servers:
        srv.stop()
    if url:
        drop_database(url)


def at_once(*calls) -> list[httpx.Response]:
    """Each call in its own thread, released together."""
    barrier, out = threading.Barrier(len(calls)), [None] * len(calls)

    def run(i):
        barrier.wait()
        out[i] = calls[i]()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def listed(client, version: int) -> bool:
    return version in client.get("/v1/models/dots").json()["versions"]


def test_an_alias_move_racing_a_delete_never_both_succeed(pair):
    servers, store, folder = pair
    clients = [srv.client() for srv in servers]
    outcomes = set()
    for i in range(ROUNDS):
        number = int(publish_tiny("quadratic", folder, model="dots", store=store, promote=False).name)
        for client in clients:
            wait_until(lambda: listed(client, number), 2, "both processes listing the new version")
        mover, deleter = (clients[0], clients[1]) if i % 3 else (clients[0], clients[0])  # every third: one process
        moved, deleted = at_once(lambda: mover.put("/v1/models/dots/aliases/default", json={"version": number}),
                                 lambda: deleter.delete(f"/v1/models/dots/versions/{number}"))
        outcomes.add((moved.status_code, deleted.status_code))
        assert (moved.status_code, deleted.status_code) in {(200, 409), (404, 200)}, (moved.text, deleted.text)
        default = store.versions.aliases().get("dots", {}).get("default", 1)  # 1: the shipped folder's alias
        assert default == 1 or default in set(store.versions.live().get("dots", {}))  # never a deleted version
        for client in clients:  # and every process serves that default, none a deleted version
            wait_until(lambda: client.get("/v1/models/dots").json()["default"] == default, 2,
                       "the process following the store")
    for client in clients:
        client.close()
    assert outcomes  # which side wins varies; both are checked above


def test_concurrent_moves_of_different_aliases_are_all_kept(pair):
    servers, store, folder = pair
    clients = [srv.client() for srv in servers]
    number = int(publish_tiny("quadratic", folder, model="dots", store=store, promote=False).name)
    for client in clients:
        wait_until(lambda: listed(client, number), 2, "both processes listing the version")
    for i in range(ROUNDS):
        first, second = at_once(lambda: clients[0].put(f"/v1/models/dots/aliases/a{i}", json={"version": number}),
                                lambda: clients[1].put(f"/v1/models/dots/aliases/b{i}", json={"version": 1}))
        assert first.status_code == second.status_code == 200, (first.text, second.text)
    expected = {**{f"a{i}": number for i in range(ROUNDS)}, **{f"b{i}": 1 for i in range(ROUNDS)}}
    assert {k: v for k, v in store.versions.aliases()["dots"].items() if k != "default"} == expected
    for client in clients:
        wait_until(lambda: {k: v for k, v in client.get("/v1/models/dots").json()["aliases"].items()
                            if k != "default"} == expected, 2, "every process listing every alias")
        client.close()
