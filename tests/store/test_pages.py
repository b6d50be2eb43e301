"""GET /v1/jobs and GET /v1/data a page at a time, through the app in-process: newest first, a cursor to the next
page, a state filter, histories only when asked, and a cursor the service never handed out is 422."""
from __future__ import annotations

import io
import uuid

import numpy as np
import pytest

from service.jobs.submit import new_record

CONFIG = {"family": "quadratic", "steps": 10, "data": "default", "params": {}, "model": "q", "seed": 0}


@pytest.fixture(scope="module")
def app(make_app):
    with make_app() as client:
        yield client


def test_jobs_come_a_page_at_a_time_newest_first_and_filter_by_state(app):
    store = app.app.state.store
    records = [store.jobs.create(new_record(dict(CONFIG), uuid.uuid4().hex, "addr:testclient",
                                            state="failed" if i % 2 else "queued", history=[{"step": i}]))
               for i in range(7)]
    made = [r["id"] for r in records]
    newest_first = [r["id"] for r in sorted(records, key=lambda r: (r["created"], r["id"]), reverse=True)]
    store.jobs.add_snapshot(made[0], 5, b"\x89PNG snapshot")
    seen, cursor = [], None
    while True:
        page = app.get("/v1/jobs", params={"limit": 3, **({"cursor": cursor} if cursor else {})}).json()
        assert len(page["jobs"]) <= 3 and all(job["history"] is None for job in page["jobs"])
        seen += [job["id"] for job in page["jobs"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == newest_first
    failed = app.get("/v1/jobs", params={"state": "failed", "history": True}).json()["jobs"]
    assert [job["id"] for job in failed] == [i for i in newest_first if i in made[1::2]]
    assert {job["id"]: job["history"] for job in failed}[made[5]] == [{"step": 5}]
    assert app.get(f"/v1/jobs/{made[0]}").json()["history"] == [{"step": 0}]
    snapshot = app.get(f"/v1/jobs/{made[0]}/snapshots/5.png")
    assert snapshot.status_code == 200 and snapshot.content == b"\x89PNG snapshot"
    assert app.get(f"/v1/jobs/{made[0]}/snapshots/6.png").status_code == 404
    assert app.get(f"/v1/jobs/{made[0]}/snapshots/{'9' * 5000}.png").status_code == 404


def test_a_cursor_the_service_never_handed_out_is_422_naming_it(app):
    for path in ("/v1/jobs", "/v1/data"):
        answer = app.get(path, params={"cursor": "not-ours"})
        assert answer.status_code == 422 and answer.json()["error"]["field"] == "cursor"
    assert app.get("/v1/jobs", params={"limit": 0}).status_code == 422


def test_uploads_come_a_page_at_a_time(app):
    ids = []
    for i in range(3):
        buffer = io.BytesIO()
        np.savez(buffer, x=np.full((2, 4, 4), i, np.uint8))
        answer = app.post("/v1/data", files={"file": (f"{i}.npz", buffer.getvalue())})
        assert answer.status_code == 201, answer.text
        ids.append(answer.json()["id"])
    first = app.get("/v1/data", params={"limit": 2}).json()
    second = app.get("/v1/data", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert sorted(m["id"] for m in first["data"] + second["data"]) == sorted(ids) and second["next_cursor"] is None


def test_readiness_reports_the_store_apart_from_redis(app):
    ready = app.get("/readyz").json()
    assert ready["store"] == "up" and ready["redis"] == "down" and ready["status"] == "ready"
