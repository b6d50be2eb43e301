"""Where the bytes of versions and uploads live: files on this machine (the embedded store), or the database
(PostgreSQL), so that a worker on another machine publishes and trains without a shared folder.

Either way a version is served from a folder `<writable repository>/<name>/<version>`: the files themselves
(embedded), or a local copy made from the database's blobs through a cache keyed by sha256 (PostgreSQL).
"""
from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

from sqlalchemy import Connection, Engine

from service.store import blobs


def remove(path: Path) -> None:
    """A folder renamed aside at once (nothing sees it half-deleted), then deleted."""
    if not path.exists():
        return
    aside = path.parent / f".trash-{path.name}-{uuid.uuid4().hex[:8]}"
    try:
        os.rename(path, aside)
    except OSError:
        return  # removed by another process meanwhile
    shutil.rmtree(aside, ignore_errors=True)


class FolderArtifacts:
    """The embedded store's: version folders in the writable repository folder, upload data in GANSERVE_DATA."""
    in_database = False

    def __init__(self, engine: Engine, repository: Path, data: Path):
        self.engine, self.repository, self.data = engine, Path(repository), Path(data)

    def version_folder(self, name: str, version: int) -> Path:
        return self.repository / name / str(version)

    def keep_version(self, db: Connection, tmp: Path, name: str, version: int) -> list[dict]:
        """Move a finished temp folder into its version's place; each file's name, sha256 and size."""
        files = [{"file": f.name, "sha256": blobs.sha256_of(f), "size": f.stat().st_size, "blob": None}
                 for f in sorted(tmp.iterdir()) if f.is_file()]
        tmp.chmod(0o755)  # mkdtemp makes it private; the service may run as another user
        self.version_folder(name, version).parent.mkdir(parents=True, exist_ok=True)
        os.rename(tmp, self.version_folder(name, version))
        return files

    def version_path(self, name: str, version: int, files: list[dict]) -> Path:
        return self.version_folder(name, version)

    def drop_version(self, db: Connection, files: list[dict]) -> None:
        """Nothing in the database: the folder goes after the transaction (forget_version)."""

    def forget_version(self, name: str, version: int) -> None:
        remove(self.version_folder(name, version))

    def upload_folder(self, upload_id: str) -> Path:
        return self.data / "uploads" / upload_id

    def keep_upload(self, db: Connection, upload_id: str, file: Path) -> tuple[str, int, int | None]:
        """Move an upload's data file into its place; (sha256, size, blob id)."""
        digest, size = blobs.sha256_of(file), file.stat().st_size
        folder = self.upload_folder(upload_id)
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = folder.parent / f".tmp-{upload_id}"
        tmp.mkdir()
        os.rename(file, tmp / "data.npz")
        tmp.chmod(0o755)
        os.rename(tmp, folder)
        return digest, size, None

    def upload_path(self, upload_id: str, sha256: str, blob: int | None) -> Path:
        return self.upload_folder(upload_id) / "data.npz"

    def drop_upload(self, db: Connection, blob: int | None) -> None:
        """Nothing in the database: the folder goes after the transaction (forget_upload)."""

    def forget_upload(self, upload_id: str) -> None:
        remove(self.upload_folder(upload_id))


class DatabaseArtifacts(FolderArtifacts):
    """PostgreSQL's: every file a blob in the database; this machine's copies in a cache by sha256, and each
    served version a folder of hard links to it."""
    in_database = True

    @property
    def cache(self) -> Path:
        return self.data / "cache"

    def keep_version(self, db: Connection, tmp: Path, name: str, version: int) -> list[dict]:
        files = []
        for f in sorted(p for p in tmp.iterdir() if p.is_file()):
            blob, digest, size = blobs.put(db, f)
            files.append({"file": f.name, "sha256": digest, "size": size, "blob": blob})
        target = self.version_folder(name, version)
        remove(target)  # a stale local copy (another database's) never stands in for this version
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp.chmod(0o755)
        os.rename(tmp, target)  # the publisher's own local copy
        return files

    def version_path(self, name: str, version: int, files: list[dict]) -> Path:
        """The version's local folder, made from the cache (and the cache from the database) when missing."""
        target = self.version_folder(name, version)
        if target.is_dir() and all((target / f["file"]).is_file() and (target / f["file"]).stat().st_size == f["size"]
                                   for f in files):
            return target
        remove(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.parent / f".tmp-{version}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            for f in files:
                cached = blobs.fetch(self.engine, f["blob"], f["sha256"], self.cache)
                try:
                    os.link(cached, tmp / f["file"])
                except OSError:  # the cache on another file system
                    shutil.copyfile(cached, tmp / f["file"])
            tmp.chmod(0o755)
            os.rename(tmp, target)
        except OSError:
            if not target.is_dir():  # another process of this machine made it meanwhile: use theirs
                raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return target

    def drop_version(self, db: Connection, files: list[dict]) -> None:
        for f in files:
            blobs.drop(db, f["blob"])

    def forget_version(self, name: str, version: int) -> None:
        """The local copy goes, and each cached file no other local version links to (its only link is the cache's)."""
        folder = self.version_folder(name, version)
        cached = [self.cache / blobs.sha256_of(f) for f in folder.iterdir() if f.is_file()] if folder.is_dir() else []
        remove(folder)
        for path in cached:
            try:
                if path.stat().st_nlink == 1:
                    path.unlink()
            except OSError:
                pass

    def keep_upload(self, db: Connection, upload_id: str, file: Path) -> tuple[str, int, int | None]:
        blob, digest, size = blobs.put(db, file)
        file.unlink()
        return digest, size, blob

    def upload_path(self, upload_id: str, sha256: str, blob: int | None) -> Path:
        return blobs.fetch(self.engine, blob, sha256, self.cache, suffix=".npz")

    def drop_upload(self, db: Connection, blob: int | None) -> None:
        blobs.drop(db, blob)

    def forget_upload(self, upload_id: str) -> None:
        """Its cached copy stays until the cache is cleared: other uploads may share the bytes (same sha256)."""
