"""The model repository on disk: the one contract between training and serving.

    <folder>/<name>/<version>/card.json, generator.onnx [, discriminator.onnx]
    <folder>/<name>/<version>/card.json, and the files its `domains` name (a translation model)

A repository may span several folders (the first is writable); the versions of a name are merged
across them and numbered once for all of them. The service's writable folder belongs to its store
(service/store): `publish_to_store` numbers and records a version there; `publish` is for bare folders
(offline tools, the shipped models). A version appears whole or not at all: `publish`
renames a finished temporary folder into the next free number, and `scan` ignores everything that
is not a plain decimal folder with a card (temporary folders start with a dot).
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
import uuid
from pathlib import Path

from service.repository.card import Card
from service.repository.kinds import Model, kind_of
from service.repository.sessions import PROVIDERS

log = logging.getLogger(__name__)
ALIASES = "aliases.json"  # beside a model's version folders: {"default": 3}


class Conflict(RuntimeError):
    """A change the repository refuses in its current state (409): a shipped version, an aliased one."""


def is_version(name: str) -> bool:
    """Plain ASCII decimals only: '²'.isdigit() is true, and int('٣') is 3."""
    return name.isascii() and name.isdigit()


def versions(model_dir: Path) -> list[int]:
    """The version numbers in one folder of a model."""
    if not model_dir.is_dir():
        return []
    return sorted(int(p.name) for p in model_dir.iterdir() if p.is_dir() and is_version(p.name))


def next_version(name: str, folders: list[Path]) -> int:
    """One above the highest version of `name` in any of the repository's folders."""
    return max([0, *(v for folder in folders for v in versions(Path(folder) / name))]) + 1


def scan(folders: list[Path]) -> dict[str, dict[int, list[Path]]]:
    """name -> version -> the folders that hold it, merged across the repository's folders.

    Two folders holding one name/version is the caller's load error (see Repository), never a
    silent pick. Anything that is not a plain decimal folder with a card is skipped, with a warning
    the first time it is seen (dot-folders, publishing's temporary ones, are skipped quietly).
    """
    found: dict[str, dict[int, list[Path]]] = {}
    for root in folders:
        if not root.is_dir():
            continue
        for model_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            for version_dir in sorted(model_dir.iterdir()):
                if version_dir.name.startswith(".") or not version_dir.is_dir():  # aliases.json, temp folders
                    continue
                if not is_version(version_dir.name):
                    _warn_once(version_dir, "not a version folder (plain decimal digits); ignored")
                elif (version_dir / "card.json").exists():
                    found.setdefault(model_dir.name, {}).setdefault(int(version_dir.name), []).append(version_dir)
    return found


_warned: set[Path] = set()


def _warn_once(path: Path, why: str) -> None:
    if path not in _warned:
        _warned.add(path)
        log.warning("%s: %s", path, why)


def signature(path: Path) -> tuple:
    """What a version folder holds now (names, sizes, times): a load error is retried once it changes."""
    return tuple(sorted((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in path.iterdir() if f.is_file()))


def load(name: str, version: int, path: Path, threads: int = 1, cores: int | None = None,
         providers: tuple[str, ...] = PROVIDERS) -> Model:
    """Read a version folder and check its card against its ONNX files (CardError names the field).
    threads 0: each network's threads measured at load (sessions.Network), as the service does; n: n each."""
    card = Card.load(path)
    return kind_of(card).load(name, version, path, card, threads, cores, providers)


def read_aliases(name: str, folders: list[Path]) -> dict[str, int]:
    """A model's aliases; the earlier folder wins an alias set in more than one."""
    aliases: dict[str, int] = {}
    for folder in reversed(folders):
        path = Path(folder) / name / ALIASES
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            continue
        except (OSError, ValueError) as exc:
            log.error("%s: unreadable (%s); its aliases are ignored", path, exc)
            continue
        aliases.update({k: v for k, v in raw.items() if isinstance(k, str) and type(v) is int})
    return aliases


def write_alias(name: str, alias: str, version: int, folder: Path) -> dict[str, int]:
    """Point an alias of `name` at a version, in the writable folder, atomically (temp file, rename)."""
    model_dir = Path(folder) / name
    model_dir.mkdir(parents=True, exist_ok=True)
    path = model_dir / ALIASES
    try:
        aliases = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        aliases = {}
    aliases[alias] = version
    tmp = model_dir / f".{ALIASES}.{uuid.uuid4().hex}"
    tmp.write_text(json.dumps(aliases, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
    return aliases


def stage(name: str, folder: Path) -> Path:
    """A new temporary folder for a version of `name`, beside where it will be published."""
    model_dir = Path(folder) / name
    model_dir.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=".tmp-", dir=model_dir))  # not a number: scan() ignores it


def publish(tmp: Path, card: Card, folders: list[Path]) -> Path:
    """Rename a finished temp folder (inside the first folder's model directory) into the next version.

    A number taken meanwhile (a concurrent publisher) moves us on to the next one.
    """
    model_dir = Path(folders[0]) / card.name
    for _ in range(100):
        card.version = next_version(card.name, folders)
        card.save(tmp)
        tmp.chmod(0o755)  # mkdtemp makes it private; the service may run as another user
        target = model_dir / str(card.version)
        try:
            os.rename(tmp, target)  # atomic; fails if the target exists and is not empty
        except OSError:
            if not target.exists():
                raise
            continue
        log.info("published %s version %s", card.name, card.version)
        return target
    raise RuntimeError(f"could not find a free version number under {model_dir}")


def publish_to_store(store, tmp: Path, card: Card, shipped: list[Path], owner: str | None = None,
                     job: str | None = None, admin: bool = False) -> Path:
    """A finished temp folder published through the store (service.store.versions.Versions): numbered by it, above
    the shipped folders' versions of the name, recorded with its files, and made the default in the same
    transaction if the card is promoted."""
    floor = max([0, *(v for folder in shipped for v in versions(Path(folder) / card.name))])
    card.version = store.allocate(card.name, floor, owner, admin)
    card.save(tmp)
    path = store.publish(tmp, card.name, card.version, json.loads(card.model_dump_json()), bool(card.promoted),
                         owner, job)
    log.info("published %s version %s through the store", card.name, card.version)
    return path
