"""The store's promises, on SQLite and on PostgreSQL: numbers never reused, one transaction per alias move and per
delete, limits checked and inserted together under concurrency, pages that neither skip nor repeat."""
from __future__ import annotations

import datetime as dt
import threading
import uuid

import pytest

from service.jobs.protocol import now
from service.jobs.submit import new_record
from service.repository.store import Conflict
from service.store import BadCursor, NotOwner, QuotaExceeded, TooManyQueued, UnknownJob, UnknownUpload, UnknownVersion
from tests.store.conftest import KINDS

pytestmark = pytest.mark.parametrize("database", KINDS, indirect=True)
CONFIG = {"family": "quadratic", "steps": 10, "data": "default", "params": {}, "model": "dots", "seed": 0}


def publish(store, tmp_path, name="dots", promote=False, owner=None, body=b"weights") -> int:
    staged = tmp_path / f"stage-{uuid.uuid4().hex}"
    staged.mkdir()
    (staged / "card.json").write_text("{}")
    (staged / "generator.onnx").write_bytes(body)
    number = store.versions.allocate(name, owner=owner)
    store.versions.publish(staged, name, number, {"name": name}, promote, owner=owner)
    return number


def job(owner="key:a", **fields) -> dict:
    return new_record(dict(CONFIG), uuid.uuid4().hex, owner, **fields)


def in_threads(count: int, action) -> list:
    """Run `action(i)` in `count` threads started together; each one's result or exception."""
    barrier, results = threading.Barrier(count), [None] * count

    def run(i):
        barrier.wait()
        try:
            results[i] = action(i)
        except Exception as exc:  # the test looks at which were refused
            results[i] = exc
    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_a_deleted_versions_number_is_never_given_again(store, tmp_path):
    first, second = publish(store, tmp_path), publish(store, tmp_path)
    store.versions.delete("dots", second)
    assert publish(store, tmp_path) == second + 1
    assert sorted(store.versions.live()["dots"]) == [first, second + 1]
    assert ("dots", second) in store.versions.deleted()
    assert not (tmp_path / "models" / "dots" / str(second)).exists()


def test_numbers_start_above_the_shipped_ones_reserved(store, tmp_path):
    store.versions.reserve("dots", 3)
    assert publish(store, tmp_path) == 4
    store.versions.reserve("dots", 2)  # never lowered
    assert publish(store, tmp_path) == 5


def test_an_alias_never_names_a_deleted_version(store, tmp_path):
    store.versions.reserve("dots", 1)  # a shipped v1
    number = publish(store, tmp_path)
    store.versions.move_alias("dots", "best", number)
    with pytest.raises(Conflict, match="aliased as best"):
        store.versions.delete("dots", number)
    store.versions.move_alias("dots", "best", 1, shipped=True)  # a shipped version the caller serves
    store.versions.delete("dots", number)
    with pytest.raises(UnknownVersion, match="deleted"):
        store.versions.move_alias("dots", "best", number)
    with pytest.raises(UnknownVersion):
        store.versions.delete("dots", number)
    assert store.versions.aliases() == {"dots": {"best": 1}}


def test_the_default_the_caller_serves_is_never_deleted(store, tmp_path):
    number = publish(store, tmp_path)
    with pytest.raises(Conflict, match="is the default"):
        store.versions.delete("dots", number, default=number)


def test_alias_moves_racing_deletes_never_both_succeed(store, tmp_path):
    for _ in range(10):
        number = publish(store, tmp_path)
        outcome = in_threads(2, lambda i: store.versions.move_alias("dots", "default", number) if i == 0
                             else store.versions.delete("dots", number))
        moved, deleted = (r is None for r in outcome)
        assert moved != deleted, outcome
        assert isinstance(outcome[1 if moved else 0], (Conflict, UnknownVersion))
        if moved:
            assert store.versions.aliases()["dots"]["default"] == number
            assert number in store.versions.live()["dots"]


def test_concurrent_alias_moves_are_all_kept(store, tmp_path):
    number = publish(store, tmp_path)
    assert in_threads(8, lambda i: store.versions.move_alias("dots", f"alias-{i}", number)) == [None] * 8
    assert store.versions.aliases()["dots"] == {f"alias-{i}": number for i in range(8)}


def test_publish_and_promote_change_the_revision_once_together(store, tmp_path):
    before = store.versions.revision()
    number = publish(store, tmp_path, promote=True)
    assert store.versions.revision() == before + 1
    assert store.versions.aliases()["dots"] == {"default": number}


def test_a_name_belongs_to_its_first_publisher(store, tmp_path):
    number = publish(store, tmp_path, owner="key:a")
    with pytest.raises(NotOwner):
        store.versions.allocate("dots", owner="key:b")
    with pytest.raises(NotOwner):
        store.versions.move_alias("dots", "default", number, owner="key:b")
    with pytest.raises(NotOwner):
        store.versions.delete("dots", number, owner="key:b")
    assert store.versions.live()["dots"][number].owner == "key:a"


def test_concurrent_submissions_pass_the_queue_bound_only_as_far_as_it_goes(store):
    results = in_threads(8, lambda i: store.jobs.create(job(), max_queued=3))
    assert sum(isinstance(r, TooManyQueued) for r in results) == 5
    assert len(store.jobs.page(owner="key:a")[0]) == 3
    store.jobs.create(job(owner="key:b"), max_queued=3)  # the bound is per owner


def test_concurrent_uploads_pass_the_quota_only_as_far_as_it_goes(store, tmp_path):
    def add(i):
        data = tmp_path / f"data-{i}.npz"
        data.write_bytes(b"x" * 100)
        meta = {"id": uuid.uuid4().hex, "filename": "x.npz", "n": 1, "shape": [1], "classes": None, "labelled": False,
                "created": now(), "owner": "key:a", "bytes": 300}
        return store.uploads.add(meta, data, quota=1000)

    results = in_threads(8, add)
    assert sum(isinstance(r, QuotaExceeded) for r in results) == 5
    assert store.uploads.used("key:a") == 900
    kept = next(r for r in results if isinstance(r, dict))
    assert store.uploads.path(kept["id"]).read_bytes() == b"x" * 100
    with pytest.raises(UnknownUpload):
        store.uploads.get(kept["id"], owner="key:b")
    store.uploads.delete(kept["id"])
    assert store.uploads.used("key:a") == 600


def test_a_record_updated_from_two_sides_at_once_loses_neither_change(store):
    record = store.jobs.create(job())

    def change(i):
        with store.jobs.update(record["id"]) as current:
            current["history"] = current["history"] + [{"step": i}]
    in_threads(8, change)
    assert sorted(p["step"] for p in store.jobs.read(record["id"])["history"]) == list(range(8))


def test_a_record_reads_back_as_written(store):
    record = job(promote=True)
    record["history"] = [{"step": 1, "loss_d": 0.5}]
    store.jobs.create(record)
    assert store.jobs.read(record["id"]) == record
    with pytest.raises(UnknownJob):
        store.jobs.read(record["id"], owner="key:b")  # another owner's: as if it did not exist
    with pytest.raises(UnknownJob):
        store.jobs.read("../../etc/passwd")


def test_pages_neither_skip_nor_repeat_and_filter_by_state(store):
    made = [store.jobs.create(job(state="succeeded" if i % 3 else "queued")) for i in range(25)]
    seen, cursor = [], None
    while True:
        page, cursor = store.jobs.page(limit=10, cursor=cursor)
        seen += [r["id"] for r in page]
        if cursor is None:
            break
    newest_first = [r["id"] for r in sorted(made, key=lambda r: (r["created"], r["id"]), reverse=True)]
    assert seen == newest_first
    queued, _ = store.jobs.page(state="queued", limit=100)
    assert {r["id"] for r in queued} == {r["id"] for r in made if r["state"] == "queued"}
    with pytest.raises(BadCursor):
        store.jobs.page(cursor="not-a-cursor")


def test_finished_records_past_the_retention_are_pruned_with_their_snapshots(store):
    old = job(state="succeeded", finished="2020-01-01T00:00:00.000+00:00")
    running = job(state="running", started="2020-01-01T00:00:00.000+00:00")
    recent = job(state="failed", finished=now())
    for record in (old, running, recent):
        store.jobs.create(record)
    store.jobs.add_snapshot(old["id"], 10, b"png")
    assert store.jobs.prune(30, dt.datetime.now(dt.timezone.utc)) == 1
    assert {r["id"] for r in store.jobs.page()[0]} == {running["id"], recent["id"]}
    assert store.jobs.snapshot(old["id"], 10) is None


def test_a_job_whose_worker_stopped_beating_is_reaped(store):
    record = store.jobs.create(job(state="running", heartbeat="2020-01-01T00:00:00.000+00:00"))
    live = store.jobs.create(job(state="running", heartbeat=now()))
    assert store.jobs.reap(30, now()) == [record["id"]]
    assert "worker lost" in store.jobs.read(record["id"])["error"]
    assert store.jobs.read(live["id"])["state"] == "running"
    assert store.jobs.beat(live["id"], now()) and not store.jobs.beat(record["id"], now())
