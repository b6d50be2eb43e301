"""Output formats: one Encoder per format, registered by name in FORMATS; every list of format names derives from it.

An encoder writes the routes it implements: `samples` (a whole /samples body), `translation` (a whole
/translate body) and `stream` (a /datasets body, chunk by chunk). Which routes a format answers, the
request schemas' enums, the OpenAPI content types and the web page's menus are read from here. A new
format is one file defining an Encoder and one `register(...)` line at the end of this one
(docs/extending.md).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np

from service.formats.pictures import EncodingError
from service.sampling.samples import Samples

ROUTES = ("samples", "translate", "datasets")


@dataclass(frozen=True)
class Stream:
    """What a streamed dataset's encoder knows before its first chunk."""
    n: int  # samples in the response
    sample_shape: list[int]
    images: bool
    labels: np.ndarray | None  # (n,) label indices of every sample, or None
    label_names: list[str] | None
    offset: int = 0  # the index of the response's first sample in the whole dataset


# Chunks of a stream: (index of the chunk's first sample within the response, its Samples)
Chunks = Iterator[tuple[int, Samples]]


class Encoder:
    """One output format. Subclasses set the class attributes and write the routes they answer."""
    name: str
    media_type: str
    help: str
    _routes: tuple[str, ...] = ()
    images_only: tuple[str, ...] = ()  # routes on which it holds a picture of each sample: image models only
    tiles: bool = False  # lays a request's images out as one grid (the request's `grid`)

    def samples(self, samples: Samples, grid: tuple[int, int] | None = None, picture: dict | None = None) -> bytes:
        raise NotImplementedError

    def translation(self, result) -> bytes:
        raise NotImplementedError

    def stream(self, chunks: Chunks, stream: Stream) -> Iterator[bytes]:
        raise NotImplementedError

    def cheap(self, samples: Samples) -> bool:
        """Whether encoding is a copy of at most a megabyte: cheaper on the event loop than a thread hop."""
        return False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        methods = {"samples": "samples", "translate": "translation", "datasets": "stream"}
        cls._routes = tuple(route for route in ROUTES
                            if getattr(cls, methods[route]) is not getattr(Encoder, methods[route]))

    def routes(self) -> tuple[str, ...]:
        """The routes this format answers: those whose method the encoder writes."""
        return self._routes

    def check(self, route: str, images: bool, makes: str) -> None:
        """Refuse, before any work, samples this format cannot write on a route (`makes`: what the model makes)."""
        if route in self.images_only and not images:
            others = [name for name in names(route) if route not in FORMATS[name].images_only]
            raise EncodingError(f"format: {self.name!r} holds images; this model makes {makes}: use "
                                f"{', '.join(others[:-1])} or {others[-1]}")


FORMATS: dict[str, Encoder] = {}


def register(encoder: Encoder) -> Encoder:
    """Make a format known to every route it writes, schema, menu and client listing (by its name)."""
    FORMATS[encoder.name] = encoder
    return encoder


def names(route: str) -> list[str]:
    """The formats a route answers, in registration order."""
    return [name for name, encoder in FORMATS.items() if route in encoder.routes()]


def get(name: str, route: str) -> Encoder:
    """The encoder of a format on a route, or EncodingError listing the route's formats."""
    encoder = FORMATS.get(name)
    if encoder is None or route not in encoder.routes():
        raise EncodingError(f"format: unknown format {name!r}; known: {', '.join(names(route))}")
    return encoder


def default(route: str) -> str:
    """What a request that names no format gets: the route's first format."""
    return names(route)[0]


def media_types(route: str) -> list[str]:
    return sorted({FORMATS[name].media_type for name in names(route)})


def described(route: str) -> str:
    """Every format of a route and what it holds, for the API's documentation of `format`."""
    return "; ".join(f"{name}: {FORMATS[name].help}" for name in names(route))


from service.formats import animation, json_body, npy, npz, png, tar, zip  # noqa: E402  (they import this module)

register(json_body.Json())
register(png.Png())
register(animation.Animation("gif", "image/gif", optimize=False))
register(animation.Animation("webp", "image/webp", lossless=True, method=4))
register(npy.Npy())
register(npz.Npz())
register(zip.Zip())
register(tar.Tar())
