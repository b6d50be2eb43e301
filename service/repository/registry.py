"""The models being served: each name's default version (an alias, or the newest good one), reloaded live.

With a store (the service's case), the first repository folder is the store's: its versions and every alias
come from the store, and a version the store deleted is unloaded at the next refresh. The other folders are
read-only (shipped) and scanned. Without one (offline tools, a bare folder), every folder is scanned.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

from service.repository.card import Card, CardError
from service.repository.kinds import Model
from service.repository.sessions import PROVIDERS
from service.repository.store import load, read_aliases, scan, signature

log = logging.getLogger(__name__)


class UnknownModel(LookupError):
    """A model or version the repository does not hold."""


@dataclass
class Entry:
    """What the repository knows of a name: version -> folder and card, loaded models, errors, aliases."""
    folders: dict[int, Path] = field(default_factory=dict)
    cards: dict[int, tuple[int, Card]] = field(default_factory=dict)  # version -> (card.json mtime, card)
    loaded: dict[int, Model] = field(default_factory=dict)
    errors: dict[int, str] = field(default_factory=dict)
    failed: dict[int, tuple] = field(default_factory=dict)  # what an errored folder held when it failed
    aliases: dict[str, int] = field(default_factory=dict)
    checked: set[int] = field(default_factory=set)  # versions loaded once to check them, card against ONNX
    stored: set[int] = field(default_factory=set)  # versions the store holds (not shipped), as last seen

    def card(self, version: int) -> Card | None:
        return self.cards[version][1] if version in self.cards else None

    @property
    def latest(self) -> int | None:
        """The highest version that loads (a broken newer one never hides a working one)."""
        good = [v for v in self.folders if v not in self.errors]
        return max(good) if good else None

    @property
    def default(self) -> int | None:
        """What an unversioned request gets: the `default` alias, else the newest version that loads and
        is no candidate (a version that failed its gate or was published without promotion)."""
        alias = self.aliases.get("default")
        if alias in self.folders and alias not in self.errors:
            return alias
        good = [v for v in self.folders if v not in self.errors and not (self.card(v) and self.card(v).candidate)]
        return max(good) if good else None


class Repository:
    """Models by name; new versions are loaded by refresh() while the old ones keep serving."""

    def __init__(self, folders: list[Path], threads: int = 1, cores: int | None = None, store=None,
                 providers: tuple[str, ...] = PROVIDERS):
        self.folders = [Path(f) for f in folders]
        self.threads, self.cores, self.providers = threads, cores, providers
        self.store = store  # service.store.versions.Versions, or None: every folder is scanned
        self._entries: dict[str, Entry] = {}
        self._lock = threading.Lock()
        self._refreshing = threading.Lock()
        self._reserved: dict[str, int] = {}  # the highest shipped number of each name the store was told of

    @property
    def scanned(self) -> list[Path]:
        """The folders read from disk: the read-only ones when the store holds the first."""
        return self.folders[1:] if self.store is not None else self.folders

    def refresh(self, only: str | None = None) -> list[tuple[str, int]]:
        """Rescan the folders (and ask the store) and load each name's default version; returns what was newly
        loaded. One refresh at a time: the watcher's and a route's never interleave."""
        with self._refreshing:
            return self._refresh(only)

    def _found(self) -> tuple[dict[str, dict[int, list[Path]]], dict[str, dict[str, int]]]:
        """name -> version -> folders, and name -> the store's aliases: the scanned folders, then the store's live
        versions (each fetched to a local folder first, if its files live in the database)."""
        found = scan(self.scanned)
        if self.store is None:
            return found, {}
        for name, versions in found.items():  # shipped numbers are never given to a stored version
            if self._reserved.get(name, 0) < max(versions):
                self.store.reserve(name, max(versions))
                self._reserved[name] = max(versions)
        for name, versions in self.store.live().items():
            for number, version in versions.items():
                try:
                    path = self.store.path(version)
                except OSError as exc:  # deleted meanwhile, or its bytes do not match: the next refresh decides,
                    log.warning("model %s version %s: no local copy (%s)", name, number, exc)
                    known = self._entries.get(name)  # and until then what is here serves on
                    if known is None or number not in known.folders:
                        continue
                    path = known.folders[number]
                found.setdefault(name, {}).setdefault(number, []).insert(0, path)
        return found, self.store.aliases()

    def _refresh(self, only: str | None) -> list[tuple[str, int]]:
        found, stored_aliases = self._found()
        loaded = []
        for name, versions in found.items():
            if only is not None and name != only:
                continue
            with self._lock:
                entry = self._entries.setdefault(name, Entry())
                entry.folders = {v: paths[0] for v, paths in versions.items()}
                for gone in set(entry.loaded) - set(entry.folders):  # deleted: never served again
                    del entry.loaded[gone]
                if self.store is not None:  # a stored version deleted meanwhile: its local copy goes too
                    for gone in set(entry.stored) - set(entry.folders):
                        self.store.artifacts.forget_version(name, gone)
                    entry.stored = {v for v, path in entry.folders.items() if not self.is_shipped(path)}
                entry.checked &= set(entry.folders)
                entry.aliases = {**read_aliases(name, self.scanned), **stored_aliases.get(name, {})}
                self._forget_stale_errors(entry)
                for v, paths in versions.items():
                    if len(paths) > 1:
                        entry.errors[v] = (f"RepositoryConflict: version {v} of {name!r} is in more than one "
                                           f"folder ({', '.join(map(self.public, paths))}); keep one")
                        entry.failed.pop(v, None)
                self._read_cards(name, entry)
            # Every new version is loaded once, so a broken one is reported (and never becomes the default)
            # before anyone asks for it; only the default stays loaded.
            for version in sorted(set(entry.folders) - entry.checked - set(entry.errors) - set(entry.loaded)):
                if self._load(name, version) and version != entry.default:
                    with self._lock:
                        entry.loaded.pop(version, None)
                entry.checked.add(version)
            default = entry.default
            if default is not None and default not in entry.loaded and self._load(name, default):
                loaded.append((name, default))
        with self._lock:  # a name whose folders vanished is no longer served
            for name in [n for n in self._entries if n not in found and (only is None or n == only)]:
                for gone in self._entries.pop(name).stored:
                    self.store.artifacts.forget_version(name, gone)
        return loaded

    @staticmethod
    def _read_cards(name: str, entry: Entry) -> None:
        """Each version's card, re-read only when its card.json changed; an unreadable one is a load error."""
        entry.cards = {v: c for v, c in entry.cards.items() if v in entry.folders}
        for version, path in entry.folders.items():
            try:
                stamp = (path / "card.json").stat().st_mtime_ns
                if entry.cards.get(version, (None,))[0] != stamp:
                    entry.cards[version] = (stamp, Card.load(path))
            except (OSError, CardError) as exc:
                entry.cards.pop(version, None)
                if version not in entry.errors:
                    entry.errors[version] = f"{type(exc).__name__}: {exc}"
                    entry.failed[version] = _signature(path)

    @staticmethod
    def _forget_stale_errors(entry: Entry) -> None:
        """Errors of versions that are gone, or whose files changed since they failed, no longer apply."""
        for version in list(entry.errors):
            path = entry.folders.get(version)
            if path is None or entry.failed.get(version) != _signature(path):
                entry.errors.pop(version)
                entry.failed.pop(version, None)
                entry.loaded.pop(version, None)
                entry.checked.discard(version)

    def _load(self, name: str, version: int) -> bool:
        """Load a version into its entry. A version deleted (or replaced) while it loaded is never kept: the
        refresh that removed it may have run meanwhile, on another thread."""
        entry = self._entries[name]
        path = entry.folders.get(version)
        if path is None:
            return False
        try:
            model = load(name, version, path, self.threads, self.cores, self.providers)
        except Exception as exc:  # a broken version is reported; the old one keeps serving
            log.error("model %s version %s failed to load: %s", name, version, exc)
            message = str(exc).replace(str(path.resolve()), self.public(path)).replace(str(path), self.public(path))
            with self._lock:
                if entry.folders.get(version) == path:
                    entry.errors[version] = f"{type(exc).__name__}: {message}"
                    entry.failed[version] = _signature(path)
            return False
        with self._lock:
            if entry.folders.get(version) != path:
                return False
            entry.loaded[version] = model
        log.info("loaded model %s version %s from %s", name, version, path)
        return True

    def get(self, name: str, version: int | None = None) -> Model:
        """A loaded model, its default version unless one is named; UnknownModel lists the choices."""
        entry = self.entry(name)
        if version is None:
            version = entry.default
            if version is None:
                raise UnknownModel(f"model {name!r} has no default version: versions {sorted(entry.folders)} "
                                   "failed to load or their gate; name a version, or move the default alias")
            if version not in entry.loaded and version not in entry.errors:
                self._load(name, version)  # an alias moved since the last refresh
        if version not in entry.folders:
            raise UnknownModel(f"model {name!r} has no version {version}; versions: {sorted(entry.folders)}")
        if version in entry.errors:
            raise UnknownModel(f"model {name!r} version {version} failed to load: {entry.errors[version]}")
        if version not in entry.loaded and not self._load(name, version):
            why = entry.errors.get(version, "it was deleted meanwhile")
            raise UnknownModel(f"model {name!r} version {version} failed to load: {why}")
        model = entry.loaded.get(version)
        if model is None:  # deleted between the checks above and now
            raise UnknownModel(f"model {name!r} has no version {version}; versions: {sorted(entry.folders)}")
        return model

    def loaded(self, name: str, version: int | None = None) -> Model | None:
        """The model get() would give, if it is loaded already (no I/O); None when get() would have to load it.
        UnknownModel for a name the repository does not hold."""
        entry = self.entry(name)
        return entry.loaded.get(entry.default if version is None else version)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def entry(self, name: str) -> Entry:
        if name not in self._entries:
            raise UnknownModel(f"unknown model {name!r}; known: {sorted(self._entries)}")
        return self._entries[name]

    def public(self, path: Path) -> str:
        """A version folder as responses may show it: relative to its repository folder as configured, never
        an absolute path of this machine."""
        for i, folder in enumerate(self.folders):
            if path.parent.parent == folder:
                root = str(folder) if not folder.is_absolute() else f"<repository folder {i + 1}>"
                return f"{root}/{path.parent.name}/{path.name}"
        return f"{path.parent.name}/{path.name}"

    def is_shipped(self, path: Path) -> bool:
        """Whether a version folder lies in a read-only repository folder (any but the first)."""
        return path.parent.parent != self.folders[0]


def _signature(path: Path) -> tuple | None:
    try:
        return signature(path)
    except OSError:  # removed meanwhile
        return None
