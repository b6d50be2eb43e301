"""tar: WebDataset shards, NNNNNN.png and NNNNNN.cls (the label index as text) per sample, named by its index
in the whole dataset; each sample complete as soon as its bytes arrive, so a reader can use it while it streams."""
from __future__ import annotations

import io
import tarfile

from service.formats import Chunks, Encoder, Stream
from service.formats.archives import Pipe
from service.formats.pictures import pixels, png


class Tar(Encoder):
    name = "tar"
    media_type = "application/x-tar"
    help = "WebDataset: NNNNNN.png and NNNNNN.cls (the label index) per sample, readable as it streams"
    images_only = ("datasets",)

    def stream(self, chunks: Chunks, stream: Stream):
        pipe = Pipe()
        # Fixed metadata, so the same request gives the same bytes; each chunk's samples are flushed whole.
        with tarfile.open(fileobj=pipe, mode="w|", format=tarfile.USTAR_FORMAT) as archive:
            for start, part in chunks:
                for j, img in enumerate(pixels(part)):
                    key = f"{stream.offset + start + j:06d}"
                    _add(archive, f"{key}.png", png(img))
                    if part.labels is not None:
                        _add(archive, f"{key}.cls", str(int(part.labels[j])).encode())
                yield pipe.drain()
        yield pipe.drain()


def _add(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644
    archive.addfile(info, io.BytesIO(data))
