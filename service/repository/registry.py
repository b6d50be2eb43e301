"""The models being served: the newest loadable version of each name, reloaded while serving."""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

from service.repository.store import Model, load, scan, signature

log = logging.getLogger(__name__)


class UnknownModel(LookupError):
    """A model or version the repository does not hold."""


@dataclass
class Entry:
    """What the repository knows of a name: version -> folder, loaded models, load errors."""
    folders: dict[int, Path] = field(default_factory=dict)
    loaded: dict[int, Model] = field(default_factory=dict)
    errors: dict[int, str] = field(default_factory=dict)
    failed: dict[int, tuple] = field(default_factory=dict)  # what an errored folder held when it failed

    @property
    def latest(self) -> int | None:
        """The highest version that loaded (a broken newer one never hides a working one)."""
        good = [v for v in self.folders if v not in self.errors]
        return max(good) if good else None


class Repository:
    """Models by name; new versions are loaded by refresh() while the old ones keep serving."""

    def __init__(self, folders: list[Path], threads: int = 1):
        self.folders = [Path(f) for f in folders]
        self.threads = threads
        self._entries: dict[str, Entry] = {}
        self._lock = threading.Lock()

    def refresh(self, only: str | None = None) -> list[tuple[str, int]]:
        """Rescan the folders and load each name's newest version; returns what was newly loaded."""
        found = scan(self.folders)
        loaded = []
        for name, versions in found.items():
            if only is not None and name != only:
                continue
            with self._lock:
                entry = self._entries.setdefault(name, Entry())
                entry.folders = {v: paths[0] for v, paths in versions.items()}
                self._forget_stale_errors(entry)
                for v, paths in versions.items():
                    if len(paths) > 1:
                        entry.errors[v] = (f"RepositoryConflict: version {v} of {name!r} is in more than one "
                                           f"folder ({', '.join(map(str, paths))}); keep one")
                        entry.failed.pop(v, None)
            newest = entry.latest
            if newest is not None and newest not in entry.loaded and self._load(name, newest):
                loaded.append((name, newest))
        with self._lock:  # a name whose folders vanished is no longer served
            for name in [n for n in self._entries if n not in found and (only is None or n == only)]:
                del self._entries[name]
        return loaded

    def _load(self, name: str, version: int) -> bool:
        entry = self._entries[name]
        try:
            model = load(name, version, entry.folders[version], self.threads)
        except Exception as exc:  # a broken version is reported; the old one keeps serving
            log.error("model %s version %s failed to load: %s", name, version, exc)
            with self._lock:
                entry.errors[version] = f"{type(exc).__name__}: {exc}"
                entry.failed[version] = _signature(entry.folders[version])
            return False
        with self._lock:
            entry.loaded[version] = model
        log.info("loaded model %s version %s from %s", name, version, entry.folders[version])
        return True

    @staticmethod
    def _forget_stale_errors(entry: Entry) -> None:
        """Errors of versions that are gone, or whose files changed since they failed, no longer apply."""
        for version in list(entry.errors):
            path = entry.folders.get(version)
            if path is None or entry.failed.get(version) != _signature(path):
                entry.errors.pop(version)
                entry.failed.pop(version, None)
                entry.loaded.pop(version, None)

    def get(self, name: str, version: int | None = None) -> Model:
        """A loaded model, the latest version unless one is named; UnknownModel lists the choices."""
        entry = self._entries.get(name)
        if entry is None:
            raise UnknownModel(f"unknown model {name!r}; known: {sorted(self._entries)}")
        if version is None:
            version = entry.latest
            if version is None:
                raise UnknownModel(f"model {name!r} has no version that loads: {entry.errors}")
        if version not in entry.folders:
            raise UnknownModel(f"model {name!r} has no version {version}; versions: {sorted(entry.folders)}")
        if version in entry.errors:
            raise UnknownModel(f"model {name!r} version {version} failed to load: {entry.errors[version]}")
        if version not in entry.loaded and not self._load(name, version):
            raise UnknownModel(f"model {name!r} version {version} failed to load: {entry.errors[version]}")
        return entry.loaded[version]

    def names(self) -> list[str]:
        return sorted(self._entries)

    def entry(self, name: str) -> Entry:
        if name not in self._entries:
            raise UnknownModel(f"unknown model {name!r}; known: {sorted(self._entries)}")
        return self._entries[name]

    def describe(self, name: str) -> dict:
        """A model's versions, load errors and the latest card, for /v1/models."""
        entry = self.entry(name)
        latest = self.get(name) if entry.latest is not None else None
        return {
            "name": name,
            "latest": entry.latest,
            "versions": sorted(entry.folders),
            "errors": {str(v): e for v, e in entry.errors.items()},
            "card": latest.card.model_dump() if latest else None,
        }


def _signature(path: Path) -> tuple | None:
    try:
        return signature(path)
    except OSError:  # removed meanwhile
        return None
