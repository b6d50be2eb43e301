"""The model repository: find versions across folders, load sessions, swap on reload."""
from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

import onnxruntime as ort

log = logging.getLogger(__name__)


class UnknownModel(LookupError):
    """A model or version the repository does not hold."""


@dataclass
class Model:
    """One loaded version: its card and its shared onnxruntime sessions (run() is thread-safe)."""
    name: str
    version: int
    path: Path
    card: dict
    generator: ort.InferenceSession
    discriminator: ort.InferenceSession | None

    @property
    def labels(self) -> list[str] | None:
        return self.card.get("labels")

    @property
    def latent_dim(self) -> int:
        return int(self.card["latent"]["dim"])


@dataclass
class Entry:
    """What the repository knows of a name: version -> folder, loaded models, load errors."""
    folders: dict[int, Path] = field(default_factory=dict)
    loaded: dict[int, Model] = field(default_factory=dict)
    errors: dict[int, str] = field(default_factory=dict)

    @property
    def latest(self) -> int | None:
        """The highest version that loaded (a broken newer one never hides a working one)."""
        good = [v for v in self.folders if v not in self.errors]
        return max(good) if good else None


def session_options(threads: int) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # Spinning threads burn the cores that request handling and the other sessions need.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return options


def load(name: str, version: int, path: Path, threads: int = 1) -> Model:
    """Read a version folder: card.json, generator.onnx and (if present) discriminator.onnx."""
    card = json.loads((path / "card.json").read_text())
    options = session_options(threads)
    providers = ["CPUExecutionProvider"]
    generator = ort.InferenceSession(str(path / "generator.onnx"), options, providers=providers)
    d_path = path / "discriminator.onnx"
    discriminator = ort.InferenceSession(str(d_path), options, providers=providers) if d_path.exists() else None
    return Model(name=name, version=version, path=path, card=card, generator=generator, discriminator=discriminator)


def scan(folders: list[Path]) -> dict[str, dict[int, Path]]:
    """name -> version -> folder, merged across folders; an earlier folder wins a shared number."""
    found: dict[str, dict[int, Path]] = {}
    for root in folders:
        if not root.is_dir():
            continue
        for model_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            for version_dir in model_dir.iterdir():
                if version_dir.is_dir() and version_dir.name.isdigit() and (version_dir / "card.json").exists():
                    found.setdefault(model_dir.name, {}).setdefault(int(version_dir.name), version_dir)
    return found


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
        for name, folders in found.items():
            if only is not None and name != only:
                continue
            with self._lock:
                entry = self._entries.setdefault(name, Entry())
                entry.folders = folders
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
            return False
        with self._lock:
            entry.loaded[version] = model
        log.info("loaded model %s version %s from %s", name, version, entry.folders[version])
        return True

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
            "card": latest.card if latest else None,
        }
