"""zip: one PNG per image sample (or one CSV of numbers) and index.csv; a dataset's zip holds one folder of
PNGs per label, the layout POST /v1/data takes back."""
from __future__ import annotations

import io
import zipfile

from service.formats import Chunks, Encoder, Stream
from service.formats.archives import INDEX_HEADER, Pipe, entry, zip_info
from service.formats.pictures import pixels, png
from service.sampling.samples import Samples


class Zip(Encoder):
    name = "zip"
    media_type = "application/zip"
    images_only = ("datasets",)
    help = ("one PNG per image (or samples.csv of numbers) and index.csv (file, label, score); datasets: one folder "
            "of PNGs per label")

    def samples(self, samples: Samples, grid=None, picture=None) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
            if samples.images:
                rows = write_pngs(archive, samples, [f"{i:06d}.png" for i in range(len(samples.values))])
            else:
                lines = [",".join(f"{v:.6f}" for v in row) for row in samples.values.reshape(len(samples.values), -1)]
                archive.writestr(zip_info("samples.csv"), "\n".join(lines) + "\n")
                rows = index_rows([str(i) for i in range(len(samples.values))], samples)
            archive.writestr(zip_info("index.csv"), "\n".join([INDEX_HEADER, *rows]) + "\n")
        return buffer.getvalue()

    def translation(self, result) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
            files = [f"{i:06d}.png" for i in range(len(result.values))]
            for file, img in zip(files, pixels(result)):
                archive.writestr(zip_info(file), png(img))
            rows = [f"{file},{score:.6f}" for file, score in zip(files, result.scores)]
            archive.writestr(zip_info("index.csv"), "\n".join(["file,score", *rows]) + "\n")
        return buffer.getvalue()

    def stream(self, chunks: Chunks, stream: Stream):
        pipe = Pipe()
        with zipfile.ZipFile(pipe, "w", allowZip64=True) as archive:
            rows = [INDEX_HEADER]
            for start, part in chunks:
                folders = part.label_names_per_sample() or ["samples"] * len(part.values)
                rows += write_pngs(archive, part, [f"{folder}/{stream.offset + start + j:07d}.png"
                                                   for j, folder in enumerate(folders)])
                yield pipe.drain()
            with entry(archive, "index.csv", compress=True) as f:
                f.write(("\n".join(rows) + "\n").encode())
        yield pipe.drain()


def index_rows(files: list[str], samples: Samples) -> list[str]:
    """index.csv rows beside a zip's samples: file (or row), label name, discriminator score."""
    names = samples.label_names_per_sample()
    return [f"{file},{names[i] if names else ''},{'' if samples.scores is None else f'{samples.scores[i]:.6f}'}"
            for i, file in enumerate(files)]


def write_pngs(archive: zipfile.ZipFile, samples: Samples, files: list[str]) -> list[str]:
    """One PNG entry per image sample, named by files; returns their index.csv rows."""
    for file, img in zip(files, pixels(samples)):
        with archive.open(zip_info(file), "w") as item:
            item.write(png(img))
    return index_rows(files, samples)
