"""Model versions and aliases in the store: numbers from the database, never reused; a move and a delete are one
transaction each, so an alias never names a deleted version.

Shipped versions (the read-only repository folders) are not rows: every process reads them from its own copy
of the image. Their highest number per name is reserved here (`reserve`), so a job never publishes a number a
shipped version has, and an alias may name a shipped version the caller has checked it serves.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, Engine, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from service.repository.registry import UnknownModel
from service.repository.store import Conflict
from service.store.artifacts import FolderArtifacts
from service.store.engine import transaction
from service.store.tables import aliases, models, revision, version_files, versions


class UnknownVersion(UnknownModel):
    """No live version with that number (never published, or deleted): 404."""


class NotOwner(PermissionError):
    """A change to a model another owner published (tenancy: moving its aliases, deleting or publishing)."""


@dataclass
class Version:
    """A live version as the store holds it: enough to find (or fetch) its files and show its card."""
    name: str
    version: int
    card: dict
    owner: str | None
    job: str | None
    promoted: bool
    files: list[dict]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def bump(db: Connection) -> None:
    """Tell every process something changed (they poll `revision`)."""
    db.execute(update(revision).where(revision.c.id == 1).values(value=revision.c.value + 1))


def _upsert(db: Connection):
    return pg_insert if db.dialect.name == "postgresql" else sqlite_insert


def _lock_model(db: Connection, name: str, owner: str | None = None):
    """The model's row, created if needed, locked until the transaction ends: every change to a name's versions
    and aliases takes this lock first, so they happen one after another."""
    db.execute(_upsert(db)(models).values(name=name, next_version=1, owner=owner, created=_now())
               .on_conflict_do_nothing())
    return db.execute(select(models).where(models.c.name == name).with_for_update()).one()


def _check_owner(row, owner: str | None) -> None:
    """`owner` None acts on everything (an admin key, the operator's command line); a key acts on its own models
    only, never on a shipped one or one the operator published (whose owner is None)."""
    if owner is not None and row.owner != owner:
        raise NotOwner(f"model: {row.name!r} belongs to {'another key' if row.owner else 'the operator'}; only its "
                       "owner (or an admin key) may publish to it, move its aliases or delete its versions")


class Versions:
    def __init__(self, engine: Engine, artifacts: FolderArtifacts):
        self.engine, self.artifacts = engine, artifacts

    def revision(self) -> int:
        with transaction(self.engine) as db:
            return db.scalar(select(revision.c.value).where(revision.c.id == 1))

    def reserve(self, name: str, highest: int) -> None:
        """Numbers up to `highest` are taken (by shipped versions): the next one published is above them."""
        with transaction(self.engine, write=True) as db:
            row = _lock_model(db, name)
            if row.next_version <= highest:
                db.execute(update(models).where(models.c.name == name).values(next_version=highest + 1))

    def is_new(self, name: str) -> bool:
        """Whether nothing was ever published under `name` in the store."""
        with transaction(self.engine) as db:
            return db.scalar(select(func.count()).select_from(versions).where(versions.c.name == name)) == 0

    def owner(self, name: str) -> tuple[bool, str | None]:
        """(whether the name was ever published or reserved, its owner: None for the operator's and shipped)."""
        with transaction(self.engine) as db:
            row = db.execute(select(models.c.owner).where(models.c.name == name)).first()
        return (row is not None, row.owner if row is not None else None)

    def check_publisher(self, name: str, owner: str | None, shipped: bool) -> None:
        """NotOwner unless `owner` may publish to `name` (before any work: a job at submit, an import): a new name,
        or one of its own; a shipped name, or one the operator published, only an admin (`owner` None)."""
        if owner is None:
            return
        known, current = self.owner(name)
        if shipped or (known and current != owner):
            raise NotOwner(f"model: {name!r} belongs to {'another key' if current and not shipped else 'the operator'};"
                           " publish under a name of your own (or leave model out)")

    def allocate(self, name: str, floor: int = 0, owner: str | None = None, admin: bool = False) -> int:
        """The next number of `name`, above `floor` (the publisher's shipped versions), taken for good: a publish
        that fails after this leaves a gap, never a reused number. A new name becomes `owner`'s; an existing one
        must be `owner`'s, unless an admin publishes."""
        with transaction(self.engine, write=True) as db:
            row = _lock_model(db, name, owner)
            _check_owner(row, None if admin else owner)
            number = max(row.next_version, floor + 1)
            db.execute(update(models).where(models.c.name == name).values(next_version=number + 1))
        return number

    def publish(self, tmp: Path, name: str, version: int, card: dict, promote: bool, owner: str | None = None,
                job: str | None = None) -> Path:
        """Record an allocated version with its files (moved from `tmp`) and, if `promote`, point `default` at it:
        one transaction, so every process sees the version and the alias together."""
        with transaction(self.engine, write=True) as db:
            _lock_model(db, name)
            files = self.artifacts.keep_version(db, tmp, name, version)
            db.execute(insert(versions).values(name=name, version=version, state="live", card=card, owner=owner,
                                               job=job, promoted=promote, created=_now()))
            for f in files:
                db.execute(insert(version_files).values(name=name, version=version, **f))
            if promote:
                self._set_alias(db, name, "default", version, owner)
            bump(db)
        return self.artifacts.version_folder(name, version)

    def live(self) -> dict[str, dict[int, Version]]:
        """Every live version, by name and number."""
        with transaction(self.engine) as db:
            rows = db.execute(select(versions).where(versions.c.state == "live")).all()
            files = db.execute(select(version_files).join(versions, (versions.c.name == version_files.c.name) & (
                versions.c.version == version_files.c.version)).where(versions.c.state == "live")).all()
        by_version: dict[tuple[str, int], list[dict]] = {}
        for f in files:
            by_version.setdefault((f.name, f.version), []).append(
                {"file": f.file, "sha256": f.sha256, "size": f.size, "blob": f.blob})
        found: dict[str, dict[int, Version]] = {}
        for r in rows:
            found.setdefault(r.name, {})[r.version] = Version(r.name, r.version, r.card, r.owner, r.job, r.promoted,
                                                              by_version.get((r.name, r.version), []))
        return found

    def path(self, v: Version) -> Path:
        """The local folder a version is served from (made from the database's blobs first, if they live there)."""
        return self.artifacts.version_path(v.name, v.version, v.files)

    def aliases(self) -> dict[str, dict[str, int]]:
        with transaction(self.engine) as db:
            rows = db.execute(select(aliases.c.name, aliases.c.alias, aliases.c.version)).all()
        found: dict[str, dict[str, int]] = {}
        for name, alias, version in rows:
            found.setdefault(name, {})[alias] = version
        return found

    def move_alias(self, name: str, alias: str, version: int, shipped: bool = False, owner: str | None = None) -> None:
        """Point an alias at a live version (or one the caller serves from a shipped folder): UnknownVersion if
        it was deleted meanwhile."""
        with transaction(self.engine, write=True) as db:
            row = _lock_model(db, name)
            _check_owner(row, owner)
            state = db.scalar(select(versions.c.state).where(versions.c.name == name, versions.c.version == version))
            if state != "live" and not (state is None and shipped):
                raise UnknownVersion(f"model {name!r} has no version {version}" +
                                     (" (it was deleted)" if state == "deleted" else ""))
            self._set_alias(db, name, alias, version, owner)
            bump(db)

    @staticmethod
    def _set_alias(db: Connection, name: str, alias: str, version: int, owner: str | None) -> None:
        values = {"version": version, "owner": owner, "updated": _now()}
        db.execute(_upsert(db)(aliases).values(name=name, alias=alias, **values)
                   .on_conflict_do_update(index_elements=["name", "alias"], set_=values))

    def delete(self, name: str, version: int, default: int | None = None, owner: str | None = None) -> None:
        """Tombstone a live version no alias names (nor is the `default` the caller serves), drop its blobs:
        one transaction. Then its local folder goes."""
        with transaction(self.engine, write=True) as db:
            row = _lock_model(db, name)
            state = db.scalar(select(versions.c.state).where(versions.c.name == name, versions.c.version == version))
            if state != "live":
                raise UnknownVersion(f"model {name!r} has no version {version}")
            _check_owner(row, owner)
            pointing = sorted(db.scalars(select(aliases.c.alias).where(aliases.c.name == name,
                                                                      aliases.c.version == version)))
            if pointing:
                raise Conflict(f"version: {name} {version} is aliased as {', '.join(pointing)}; "
                                      "move the alias first")
            if version == default:
                raise Conflict(f"version: {name} {version} is the default; move the default alias first")
            files = [dict(r._mapping) for r in db.execute(select(version_files).where(
                version_files.c.name == name, version_files.c.version == version))]
            db.execute(delete(version_files).where(version_files.c.name == name, version_files.c.version == version))
            self.artifacts.drop_version(db, files)
            db.execute(update(versions).where(versions.c.name == name, versions.c.version == version)
                       .values(state="deleted", deleted=_now()))
            bump(db)
        self.artifacts.forget_version(name, version)

    def deleted(self) -> set[tuple[str, int]]:
        """Tombstones: (name, version) of every deleted version."""
        with transaction(self.engine) as db:
            return set(db.execute(select(versions.c.name, versions.c.version).where(versions.c.state == "deleted")))
