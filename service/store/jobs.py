"""Job records in the store: created by the API, updated by workers (progress, heartbeat, outcome) and the API
(cancel, reaping), listed a page at a time, pruned after the retention period.

A record is the dict the API answers. What is filtered, sorted or checked has a column (state, owner, times,
cancel flag); the rest (config, progress, history, snapshots list, result) is one JSON body. `update` locks
the row for its read-modify-write, so a cancel and a progress report never clobber each other.
"""
from __future__ import annotations

import contextlib
import datetime as dt
from typing import Iterator

from sqlalchemy import Engine, and_, delete, func, insert, or_, select, update

from service.jobs.protocol import FINAL, is_id
from service.store.engine import transaction
from service.store.owners import lock_owner
from service.store.records import after, cursor_of, parse_time, show_time
from service.store.tables import job_snapshots, jobs

TIMES = ("created", "started", "finished", "heartbeat")
COLUMNS = ("id", "owner", "state", "model", *TIMES, "cancel_requested", "requeued")


class UnknownJob(LookupError):
    """No job with that id (for this owner)."""


class TooManyQueued(RuntimeError):
    """The owner already has its limit of queued jobs; `queued` says how many."""

    def __init__(self, queued: int):
        super().__init__(queued)
        self.queued = queued


def _row(record: dict) -> dict:
    row = {name: record.get(name) for name in COLUMNS}
    row.update({name: parse_time(record.get(name)) for name in TIMES})
    row["owner"] = record.get("owner") or "anonymous"
    row["cancel_requested"] = bool(record.get("cancel_requested"))
    row["requeued"] = int(record.get("requeued") or 0)
    row["history"] = record.get("history") or []
    row["body"] = {k: v for k, v in record.items() if k not in COLUMNS and k != "history"}
    return row


def _record(row, history: bool = True) -> dict:
    record = {**row.body, **{name: getattr(row, name) for name in COLUMNS},
              "history": row.history if history else None}
    record.update({name: show_time(getattr(row, name)) for name in TIMES})
    return record


class JobRecords:
    def __init__(self, engine: Engine):
        self.engine = engine

    def create(self, record: dict, max_queued: int | None = None) -> dict:
        """Insert a new record whole; with `max_queued`, only if its owner has fewer queued jobs (one transaction:
        concurrent submissions cannot all pass the check)."""
        row = _row(record)
        with transaction(self.engine, write=True) as db:
            if max_queued is not None:
                lock_owner(db, row["owner"])
                queued = db.scalar(select(func.count()).select_from(jobs).where(
                    jobs.c.owner == row["owner"], jobs.c.state == "queued"))
                if queued >= max_queued:
                    raise TooManyQueued(queued)
            db.execute(insert(jobs).values(**row))
        return record

    def read(self, job_id: str, owner: str | None = None) -> dict:
        """A record; UnknownJob if there is none (or, given an owner, if it is another owner's)."""
        if not is_id(job_id):
            raise UnknownJob(f"unknown job {job_id[:40]!r}")
        with transaction(self.engine) as db:
            row = db.execute(select(jobs).where(jobs.c.id == job_id)).first()
        if row is None or (owner is not None and row.owner != owner):
            raise UnknownJob(f"unknown job {job_id!r}")
        return _record(row)

    def page(self, state: str | None = None, owner: str | None = None, limit: int = 50,
             cursor: str | None = None, history: bool = True) -> tuple[list[dict], str | None]:
        """Up to `limit` records, newest first, after `cursor`; and the cursor of the next page (None at the end).
        Without `history` each record's history is None, and never read (it is most of a record's bytes)."""
        columns = [c for c in jobs.c if history or c.name != "history"]
        query = select(*columns).order_by(jobs.c.created.desc(), jobs.c.id.desc()).limit(limit + 1)
        if state is not None:
            query = query.where(jobs.c.state == state)
        if owner is not None:
            query = query.where(jobs.c.owner == owner)
        if cursor:
            created, key = after(cursor)
            query = query.where(or_(jobs.c.created < created, and_(jobs.c.created == created, jobs.c.id < key)))
        with transaction(self.engine) as db:
            rows = db.execute(query).all()
        more = len(rows) > limit
        rows = rows[:limit]
        return [_record(r, history) for r in rows], (cursor_of(rows[-1].created, rows[-1].id) if more else None)

    def ids(self, state: str, before: dt.datetime | None = None) -> list[str]:
        """The ids of the records in a state (created before `before`), oldest first."""
        query = select(jobs.c.id).where(jobs.c.state == state).order_by(jobs.c.created)
        if before is not None:
            query = query.where(jobs.c.created < before)
        with transaction(self.engine) as db:
            return list(db.scalars(query))

    @contextlib.contextmanager
    def update(self, job_id: str) -> Iterator[dict]:
        """Lock the record, let the caller change the dict, write it back: one transaction."""
        if not is_id(job_id):
            raise UnknownJob(f"unknown job {job_id[:40]!r}")
        with transaction(self.engine, write=True) as db:
            row = db.execute(select(jobs).where(jobs.c.id == job_id).with_for_update()).first()
            if row is None:
                raise UnknownJob(f"unknown job {job_id!r}")
            record = _record(row)
            yield record
            values = _row(record)
            values.pop("id")
            db.execute(update(jobs).where(jobs.c.id == job_id).values(**values))

    def beat(self, job_id: str, at: str) -> bool:
        """A running job's heartbeat, without rewriting its record; False if it is no longer running."""
        with transaction(self.engine, write=True) as db:
            done = db.execute(update(jobs).where(jobs.c.id == job_id, jobs.c.state == "running")
                              .values(heartbeat=parse_time(at)))
        return done.rowcount == 1

    def cancel_requested(self, job_id: str) -> bool:
        """What the training loop polls: one column, not the record."""
        with transaction(self.engine) as db:
            return bool(db.scalar(select(jobs.c.cancel_requested).where(jobs.c.id == job_id)))

    def delete(self, job_id: str) -> None:
        with transaction(self.engine, write=True) as db:
            db.execute(delete(job_snapshots).where(job_snapshots.c.job == job_id))
            db.execute(delete(jobs).where(jobs.c.id == job_id))

    def reap(self, lost_after: float, at: str) -> list[str]:
        """Fail running jobs whose worker stopped beating (killed, or its machine gone) `lost_after` s ago."""
        cutoff = parse_time(at) - dt.timedelta(seconds=lost_after)
        with transaction(self.engine) as db:
            stale = list(db.scalars(select(jobs.c.id).where(jobs.c.state == "running", jobs.c.heartbeat < cutoff)))
        reaped = []
        for job_id in stale:
            with self.update(job_id) as record:
                beat = record["heartbeat"]
                if record["state"] == "running" and beat and parse_time(beat) < cutoff:
                    record.update(state="failed", finished=at,
                                  error=f"worker lost: no heartbeat since {beat} (over {lost_after:g} s)")
                    reaped.append(job_id)
        return reaped

    def prune(self, older_than_days: float, now: dt.datetime) -> int:
        """Delete finished records (and their snapshots) that finished more than `older_than_days` ago."""
        cutoff = now - dt.timedelta(days=older_than_days)
        finished = and_(jobs.c.state.in_(FINAL), jobs.c.finished < cutoff)
        with transaction(self.engine, write=True) as db:
            db.execute(delete(job_snapshots).where(job_snapshots.c.job.in_(select(jobs.c.id).where(finished))))
            return db.execute(delete(jobs).where(finished)).rowcount

    def add_snapshot(self, job_id: str, step: int, png: bytes) -> None:
        """A sample grid the trainer drew at `step` (kept in the store: the API may run on another machine)."""
        with transaction(self.engine, write=True) as db:
            db.execute(delete(job_snapshots).where(job_snapshots.c.job == job_id, job_snapshots.c.step == step))
            db.execute(insert(job_snapshots).values(job=job_id, step=step, png=png))

    def snapshot(self, job_id: str, step: int) -> bytes | None:
        with transaction(self.engine) as db:
            return db.scalar(select(job_snapshots.c.png).where(job_snapshots.c.job == job_id,
                                                               job_snapshots.c.step == step))
