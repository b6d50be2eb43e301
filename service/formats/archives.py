"""Archives written the same way by every encoder: fixed times (the same request gives the same bytes), and
a pipe that a streamed archive writes into and a response drains chunk by chunk."""
from __future__ import annotations

import io
import zipfile

import numpy as np

ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed entry timestamps: the current time would make every response differ
INDEX_HEADER = "file,label,score"


def zip_info(name: str, compress: bool = False) -> zipfile.ZipInfo:
    """A zip entry stamped ZIP_TIME."""
    info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    return info


def entry(archive: zipfile.ZipFile, name: str, compress: bool = False):
    """A zip entry to write into as a stream (zip64: a dataset's entry may pass 4 GB)."""
    return archive.open(zip_info(name, compress), "w", force_zip64=True)


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """An .npz written entry by entry with fixed times (np.savez stamps the clock)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for key, array in arrays.items():
            item = io.BytesIO()
            np.save(item, array, allow_pickle=False)
            archive.writestr(zip_info(f"{key}.npy"), item.getvalue())
    return buffer.getvalue()


class Pipe(io.RawIOBase):
    """A write-only stream whose bytes the response drains after each chunk (zipfile and tarfile stream into it)."""

    def __init__(self):
        self.buffer = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.buffer += data
        return len(data)

    def drain(self) -> bytes:
        out, self.buffer = bytes(self.buffer), bytearray()
        return out
