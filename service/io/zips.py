"""Zip archives (and so npz files): their entries listed under the budget's rules, each read as it declares."""
from __future__ import annotations

import contextlib
import logging
import lzma
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import BinaryIO, Iterator

from service.io.budget import MAX_RATIO, ArchiveError, Budget

log = logging.getLogger(__name__)

MAGICS = (b"PK\x03\x04", b"PK\x05\x06")  # a zip's first entry, or an empty zip's end record alone
METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}  # what zipfile inflates
# What a damaged or unsupported member raises inside zipfile (bad CRC, bad deflate data, a size that lies,
# overlapping entries, a method it cannot read); all of them are the sender's fault, never a 500.
DAMAGED = (zipfile.BadZipFile, zlib.error, lzma.LZMAError, NotImplementedError, EOFError, RuntimeError, OSError)
UNREADABLE = (zipfile.BadZipFile, OSError, EOFError, ValueError, struct.error)  # a directory zipfile cannot parse


@dataclass(frozen=True)
class Entry:
    """One file of an archive that may be read: its normalised path and its zip header."""
    path: str
    info: zipfile.ZipInfo

    @property
    def size(self) -> int:
        return self.info.file_size


@dataclass(frozen=True)
class Listing:
    """The entries of an archive that hold data, and how many metadata files were skipped (counted, logged)."""
    entries: list[Entry]
    skipped: int

    def is_npz(self) -> bool:
        """Whether the archive is an .npz: every entry an .npy array."""
        return bool(self.entries) and all(e.path.endswith(".npy") for e in self.entries)


@contextlib.contextmanager
def damaged(where: str) -> Iterator[None]:
    """Turn what zipfile (or a decompressor) raises on damaged data into an ArchiveError naming `where`."""
    try:
        yield
    except ArchiveError:
        raise
    except DAMAGED as exc:
        raise ArchiveError(f"{where}: a damaged or unsupported zip entry ({type(exc).__name__}: "
                           f"{str(exc)[:80]})") from None


@contextlib.contextmanager
def open_zip(stream: BinaryIO, where: str, budget: Budget) -> Iterator[zipfile.ZipFile]:
    """A zip archive whose central directory lists at most budget.max_entries entries (counted before zipfile
    builds an object for each)."""
    entries = _count_entries(stream, budget.max_entries + 1)
    if entries > budget.max_entries:
        raise ArchiveError(f"{where}: the zip lists over {budget.max_entries} entries, the limit (twice "
                           f"{budget.name('max_images')}, plus 64)")
    try:
        archive = zipfile.ZipFile(stream)
    except UNREADABLE:
        raise ArchiveError(f"{where}: not a readable .npz or zip") from None
    with archive:
        yield archive


def entries(archive: zipfile.ZipFile, where: str) -> Listing:
    """Every file entry, refused if it escapes (absolute, `..`, a drive), links, is encrypted, uses a method
    zipfile cannot read, or claims a compression ratio over MAX_RATIO; metadata (`__MACOSX/`, dot-files such
    as `.DS_Store` and Finder's `._x.png`, anything in a dot-folder) is skipped, and counted."""
    kept, skipped = [], []
    for info in archive.infolist():
        if info.is_dir():
            continue
        name = info.filename.replace("\\", "/")
        path = PurePosixPath(name)
        here = f"{where}/{info.filename}"
        if name.startswith("/") or ".." in path.parts or (path.parts and ":" in path.parts[0]):
            raise ArchiveError(f"{here}: a zip entry may not escape the archive's folder (absolute or '..' paths)")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise ArchiveError(f"{here}: symbolic links are not accepted")
        if info.flag_bits & 0x1:
            raise ArchiveError(f"{here}: encrypted entries are not accepted")
        if info.compress_type not in METHODS:
            raise ArchiveError(f"{here}: compression method {info.compress_type} is not supported "
                               "(stored, deflate, bzip2 and lzma are)")
        if info.compress_size and info.file_size / info.compress_size > MAX_RATIO:
            raise ArchiveError(f"{here}: compression ratio over {MAX_RATIO}:1 (a zip bomb?)")
        if any(part.startswith(".") or part == "__MACOSX" for part in path.parts):
            skipped.append(info.filename)
            continue
        kept.append(Entry(str(path), info))
    if skipped:
        log.info("%s: skipped %d metadata entries (%s%s)", where, len(skipped), ", ".join(skipped[:3]),
                 ", ..." if len(skipped) > 3 else "")
    return Listing(kept, len(skipped))


@contextlib.contextmanager
def open_entry(archive: zipfile.ZipFile, entry: Entry, where: str) -> Iterator[BinaryIO]:
    """An entry's stream; whatever its damage raises, on opening or while it is read, names it."""
    with damaged(f"{where}/{entry.path}"), archive.open(entry.info) as stream:
        yield stream


def read(archive: zipfile.ZipFile, entry: Entry, where: str) -> bytes:
    """An entry's bytes, exactly as many as its header declares (the budget has been charged for them)."""
    here = f"{where}/{entry.path}"
    with open_entry(archive, entry, where) as stream:
        data = stream.read(entry.size)
        if len(data) < entry.size:
            raise ArchiveError(f"{here}: holds {len(data)} bytes, less than its header says ({entry.size})")
        if stream.read(1):  # reading to the end also checks the CRC
            raise ArchiveError(f"{here}: holds more than its header says ({entry.size} bytes; a zip bomb?)")
    return data


def _count_entries(stream: BinaryIO, stop: int) -> int:
    """Entries in the central directory, counted from their fixed headers (at most `stop`); 0 where there is
    no readable directory (zipfile then refuses the file)."""
    # zipfile's own reading of the end record: private, but unchanged for decades and what ZipFile itself trusts.
    try:
        end = zipfile._EndRecData(stream)  # type: ignore[attr-defined]
    except OSError:
        return 0
    if not end:
        return 0
    size, offset = end[zipfile._ECD_SIZE], end[zipfile._ECD_OFFSET]  # type: ignore[attr-defined]
    start = end[zipfile._ECD_LOCATION] - size  # type: ignore[attr-defined]
    if end[zipfile._ECD_SIGNATURE] == zipfile.stringEndArchive64:  # type: ignore[attr-defined]
        start -= zipfile.sizeEndCentDir64 + zipfile.sizeEndCentDir64Locator  # type: ignore[attr-defined]
    if start < 0 or offset < 0:
        return 0
    stream.seek(start)
    count, position = 0, 0
    while position + 46 <= size and count < stop:
        head = stream.read(46)  # a central directory header: the variable lengths at 28, 30 and 32
        if len(head) < 46 or head[:4] != b"PK\x01\x02":
            break
        name, extra, comment = struct.unpack("<HHH", head[28:34])
        stream.seek(name + extra + comment, 1)
        position += 46 + name + extra + comment
        count += 1
    stream.seek(0)
    return count
