"""`ganserve import-var`: a folder-based var/ (job records as JSON files, upload folders, version folders and
aliases.json in the writable repository) into the store. Idempotent: what the store holds already is skipped,
so it can run again after an interrupted import.
"""
from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path

from sqlalchemy import func, select, update

from service.jobs.protocol import is_id
from service.repository.store import ALIASES, is_version
from service.store import Store
from service.store.engine import transaction
from service.store.tables import jobs, models, uploads, versions
from service.store.versions import _lock_model

log = logging.getLogger(__name__)


def import_var(store: Store, data: Path, repository: Path) -> dict[str, int]:
    """Import job records (and their snapshots), uploads and the writable repository's versions and aliases."""
    counts = {"jobs": _jobs(store, Path(data) / "jobs"), "uploads": _uploads(store, Path(data) / "uploads")}
    counts.update(_versions(store, Path(repository)))
    return counts


def _jobs(store: Store, folder: Path) -> int:
    done = 0
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            log.warning("%s: unreadable (%s); skipped", path, exc)
            continue
        if not is_id(str(record.get("id", ""))):
            continue
        with transaction(store.engine) as db:
            if db.scalar(select(func.count()).select_from(jobs).where(jobs.c.id == record["id"])):
                continue
        record.setdefault("owner", "anonymous")
        store.jobs.create(record)
        for png in sorted((folder / record["id"]).glob("*.png")):
            if png.stem.isdigit():
                store.jobs.add_snapshot(record["id"], int(png.stem), png.read_bytes())
        done += 1
    return done


def _uploads(store: Store, folder: Path) -> int:
    done = 0
    for meta_path in sorted(folder.glob("*/meta.json")) if folder.is_dir() else []:
        meta = json.loads(meta_path.read_text())
        if not is_id(meta_path.parent.name):
            continue
        with transaction(store.engine) as db:
            if db.scalar(select(func.count()).select_from(uploads).where(uploads.c.id == meta["id"])):
                continue
        data = meta_path.parent / "data.npz"
        meta = {**meta, "owner": meta.get("owner") or "anonymous", "bytes": meta.get("bytes") or data.stat().st_size}
        if not store.artifacts.in_database and store.artifacts.upload_folder(meta["id"]) == data.parent:  # in place
            with tempfile.TemporaryDirectory(dir=folder) as tmp:
                moved = Path(tmp) / "data.npz"
                shutil.move(data, moved)
                shutil.rmtree(meta_path.parent)
                store.uploads.add(meta, moved)
        else:
            with tempfile.TemporaryDirectory() as tmp:
                store.uploads.add(meta, Path(shutil.copy(data, Path(tmp) / "data.npz")))
        done += 1
    return done


def _versions(store: Store, repository: Path) -> dict[str, int]:
    done, aliased = 0, 0
    for model_dir in sorted(p for p in repository.iterdir() if p.is_dir() and not p.name.startswith(".")) \
            if repository.is_dir() else []:
        name = model_dir.name
        numbers = sorted(int(p.name) for p in model_dir.iterdir()
                         if p.is_dir() and is_version(p.name) and (p / "card.json").exists())
        with transaction(store.engine) as db:
            known = set(db.scalars(select(versions.c.version).where(versions.c.name == name)))
        for number in numbers:
            if number not in known:
                _version(store, model_dir / str(number), name, number)
                done += 1
        try:
            found = json.loads((model_dir / ALIASES).read_text())
        except (OSError, ValueError):
            found = {}
        live = set(store.versions.live().get(name, {}))
        for alias, number in found.items():
            if isinstance(alias, str) and type(number) is int and number in live:
                store.versions.move_alias(name, alias, number)
                aliased += 1
    return {"versions": done, "aliases": aliased}


def _version(store: Store, folder: Path, name: str, number: int) -> None:
    """One version folder, under its own number (the store's counter moves above it)."""
    card = json.loads((folder / "card.json").read_text())
    with transaction(store.engine, write=True) as db:
        row = _lock_model(db, name)
        if row.next_version <= number:
            db.execute(update(models).where(models.c.name == name).values(next_version=number + 1))
    staged = Path(tempfile.mkdtemp(prefix=".tmp-", dir=folder.parent))
    for f in folder.iterdir():
        if f.is_file():
            shutil.copy2(f, staged / f.name)
    if store.artifacts.version_folder(name, number).resolve() == folder.resolve():
        shutil.rmtree(folder)  # the store keeps its files right here: the copy takes its place
    lineage = card.get("lineage") or {}
    store.versions.publish(staged, name, number, card, promote=False, job=lineage.get("job"))
