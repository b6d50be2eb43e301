"""The store against today's files: job submit, job read and the GET /v1/jobs page at 10,000 records.

    python -m benchmarks.store [--records 10000] [--postgres postgresql://postgres@127.0.0.1/postgres]

Three stores, one run each: the JSON files with flock that held job records before the store (the class as it was
at FILES_COMMIT, read from git), SQLite (the embedded default) and PostgreSQL (a database of the run's own, dropped
after). Each gets `--records` finished jobs with a 100-point history (a job of a few thousand steps), then:
- submit: inserting one queued record with its owner's queue bound checked (what POST /v1/jobs writes);
- read: one record by id (GET /v1/jobs/{id}'s store call), and the real route through a real server (SQLite,
  PostgreSQL; HTTP from this process over loopback);
- page: the 20 newest (GET /v1/jobs's store call: the files store must read every record to sort them; with
  and without their histories, which listings leave out unless ?history=true), the real route with ?limit=20,
  and the second page through its cursor.
Writes benchmarks/store.json and prints a Markdown table (benchmarks/store.md keeps the last run's).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import types
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
FILES_COMMIT = "a6bc570"  # the last commit whose job records were JSON files (service/jobs/store.py)
HISTORY = [{"step": 10 * i, "epoch": i / 50, "loss_d": 0.69, "loss_g": 0.71, "acc_real": 0.5, "acc_fake": 0.5,
            "seconds": i * 0.1} for i in range(100)]


def record(i: int) -> dict:
    from service.jobs.protocol import now
    from service.jobs.submit import new_record

    config = {"family": "quadratic", "steps": 1000, "data": "default", "params": {}, "model": f"q-{i}", "seed": 0}
    made = new_record(config, uuid.uuid4().hex, f"key:{i % 7}")
    made.update(state="succeeded", started=now(), finished=now(), heartbeat=now(), history=HISTORY,
                latest=HISTORY[-1], snapshots=[{"step": 50 * s, "file": f"{50 * s}.png"} for s in range(20)],
                result={"model": f"q-{i}", "version": 1, "metrics": {"points_w1": 0.02}, "promoted": True})
    return made


def timed(action, repeat: int) -> dict:
    """p50 and p95 of `repeat` calls, in milliseconds."""
    action()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {"p50_ms": round(statistics.median(times), 2), "p95_ms": round(times[int(0.95 * (len(times) - 1))], 2),
            "calls": repeat}


def file_store(folder: Path):
    """Today's JobStore (before the store), loaded from git as it was."""
    source = subprocess.run(["git", "show", f"{FILES_COMMIT}:service/jobs/store.py"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    module = types.ModuleType("files_store")
    exec(compile(source, "files_store.py", "exec"), module.__dict__)
    return module.JobStore(folder)


def bench_files(records: list[dict], folder: Path) -> dict:
    store = file_store(folder / "jobs")
    store.folder.mkdir(parents=True)
    for r in records:
        store._write(r)
    ids = [r["id"] for r in records]

    def submit() -> None:  # what submit did before the store: count the owner's queued jobs, then write
        queued = sum(1 for r in store.list("queued") if r.get("owner") == "key:bench")
        assert queued < 10**6
        store.create({"family": "quadratic", "steps": 10}, job_id=uuid.uuid4().hex, owner="key:bench")

    return {
        "submit": timed(submit, 3),
        "read": timed(lambda: store.read(ids[len(ids) // 2]), 200),
        "page": timed(lambda: store.list()[:20], 3),
    }


def bench_store(records: list[dict], url: str, folder: Path, http: bool) -> dict:
    from service.store import Store
    from service.store.engine import database_url

    store = Store(database_url(url, folder), folder / "models", folder)
    store.ensure_schema()
    started = time.perf_counter()
    for r in records:
        store.jobs.create(r)
    fill = time.perf_counter() - started
    ids = [r["id"] for r in records]
    queued = iter(record(i) | {"state": "queued", "owner": "key:bench"} for i in range(10**9))
    out = {
        "fill_seconds": round(fill, 1),
        "submit": timed(lambda: store.jobs.create(next(queued), max_queued=10**6), 200),
        "read": timed(lambda: store.jobs.read(ids[len(ids) // 2]), 500),
        "page": timed(lambda: store.jobs.page(limit=20, history=False), 200),  # what GET /v1/jobs reads
        "page_history": timed(lambda: store.jobs.page(limit=20), 200),  # ... with ?history=true
    }
    store.close()
    if http:
        out.update(bench_http(url, folder, ids[len(ids) // 2]))
    return out


def bench_http(url: str, folder: Path, job_id: str) -> dict:
    """The routes through a real uvicorn process on this store."""
    from tests.utils import TINY_MODELS, UNREACHABLE_REDIS, serve

    # No broker: the reconciler must not send the benchmark's queued records to anyone's Redis.
    server = serve(TINY_MODELS, folder, database_url=url, rate_per_second=0, redis_url=UNREACHABLE_REDIS)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            first = client.get("/v1/jobs", params={"limit": 20}).json()
            assert len(first["jobs"]) == 20 and first["next_cursor"]
            return {
                "http_read": timed(lambda: client.get(f"/v1/jobs/{job_id}").raise_for_status(), 300),
                "http_page": timed(lambda: client.get("/v1/jobs", params={"limit": 20}).raise_for_status(), 100),
                "http_next_page": timed(lambda: client.get("/v1/jobs", params={
                    "limit": 20, "cursor": first["next_cursor"]}).raise_for_status(), 100),
                "page_bytes": len(client.get("/v1/jobs", params={"limit": 20}).content),
            }
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--postgres", default=os.environ.get("GANSERVE_DATABASE_URL")
                        or "postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "store.json")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from tests.utils import create_database, drop_database

    records = [record(i) for i in range(args.records)]
    results = {"records": args.records, "history_points": len(HISTORY), "machine": f"{os.cpu_count()} cores",
               "load_average_at_start": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory() as tmp:
        results["files"] = bench_files(records, Path(tmp) / "files")
        results["sqlite"] = bench_store(records, "", Path(tmp) / "sqlite", http=True)
        database = create_database(args.postgres)
        try:
            results["postgresql"] = bench_store(records, database, Path(tmp) / "postgresql", http=True)
        finally:
            drop_database(database)
    results["load_average_at_end"] = os.getloadavg()[0]
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))


def table(results: dict) -> str:
    rows = [("submit (store)", "submit"), ("read (store)", "read"), ("page of 20 (store)", "page"),
            ("page of 20 with histories (store)", "page_history"),
            ("GET /v1/jobs/{id}", "http_read"), ("GET /v1/jobs?limit=20", "http_page"),
            ("GET /v1/jobs?limit=20&cursor=…", "http_next_page")]
    lines = [f"{results['records']:,} job records, p50 / p95 in ms", "",
             "| | files (before) | SQLite | PostgreSQL |", "|---|---|---|---|"]
    for label, key in rows:
        cells = [f"{r[key]['p50_ms']} / {r[key]['p95_ms']}" if key in r else "–"
                 for r in (results["files"], results["sqlite"], results["postgresql"])]
        lines.append(f"| {label} | {' | '.join(cells)} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
