"""docs/extending.md's recipes, each done here as a user would: a toy mode, format, kind and endpoint in a few
lines, then seen in the OpenAPI schema and answering over HTTP."""
from __future__ import annotations

import contextlib
import io
import json
import shutil

import numpy as np
import pytest
from fastapi import APIRouter

from service import formats
from service.formats import Encoder
from service.repository import kinds
from service.repository.kinds.sampling import Sampling
from service.sampling import modes, plans
from service.sampling.latents import draw
from service.sampling.modes import Draw, SamplingMode
from service.sampling.samples import Samples
from tests.utils import TINY_MODELS, app_client


class Mirrored(SamplingMode):
    """A toy mode: plain samples of the negated latents (the recipe's example)."""
    name = "mirrored"
    help = "plain samples of -z"
    needs_discriminator = False
    draws_candidates = False

    def plan(self, d: Draw):
        z = -draw(d.model.card.latent, d.seed, d.start, d.n, d.truncation)
        values = yield from plans.generate(d.model, z, d.labels)
        return Samples.of(d.model, d.seed, self.name, values, d.labels, None, d.n, d.truncation)


class Csv(Encoder):
    """A toy format: numbers as CSV lines."""
    name = "csv"
    media_type = "text/csv"
    help = "one line of numbers per sample"

    def samples(self, samples, grid=None, picture=None) -> bytes:
        rows = samples.values.reshape(len(samples.values), -1)
        return "".join(",".join(f"{v:.6f}" for v in row) + "\n" for row in rows).encode()


class Vectors(Sampling):
    """A toy kind: a sampling model whose card says it makes `vectors`."""
    name = "vectors"
    makes = ("vectors",)


@contextlib.contextmanager
def registered(registry: dict, item):
    registry[item.name] = item
    try:
        yield item
    finally:
        registry.pop(item.name)


def test_a_mode_registered_in_one_line_is_in_the_schema_and_answers(tmp_path):
    with registered(modes.MODES, Mirrored()), app_client(TINY_MODELS, tmp_path) as api:
        schema = api.get("/openapi.json").json()["components"]["schemas"]["SampleRequest"]["properties"]["mode"]
        assert "mirrored" in schema["enum"] and "plain samples of -z" in schema["description"]
        assert "mirrored" in api.get("/v1/models/quadratic").json()["modes"]
        body = {"n": 3, "seed": 5, "format": "npy"}
        mirrored = api.post("/v1/models/quadratic/samples", json={**body, "mode": "mirrored"})
        plain = api.post("/v1/models/quadratic/samples", json=body)
        assert mirrored.status_code == 200 and mirrored.content != plain.content
        assert api.post("/v1/datasets", json={"model": "quadratic", "n": 4, "mode": "mirrored"}).status_code == 200
    with app_client(TINY_MODELS, tmp_path / "after") as api:  # gone again: refused like any unknown mode
        assert api.post("/v1/models/quadratic/samples", json={"mode": "mirrored"}).status_code == 422


def test_a_format_registered_in_one_line_is_in_the_schema_and_answers(tmp_path):
    with registered(formats.FORMATS, Csv()), app_client(TINY_MODELS, tmp_path) as api:
        spec = api.get("/openapi.json").json()
        assert "csv" in spec["components"]["schemas"]["SampleRequest"]["properties"]["format"]["enum"]
        assert "text/csv" in spec["paths"]["/v1/models/{name}/samples"]["post"]["responses"]["200"]["content"]
        assert "csv" not in spec["components"]["schemas"]["DatasetRequest"]["properties"]["format"]["enum"]
        r = api.post("/v1/models/quadratic/samples", json={"n": 3, "seed": 5, "format": "csv"})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        numbers = api.post("/v1/models/quadratic/samples", json={"n": 3, "seed": 5}).json()["samples"]
        np.testing.assert_allclose(np.loadtxt(io.StringIO(r.text), delimiter=","), numbers, atol=1e-5)


def test_a_kind_registered_in_one_line_serves_its_cards(tmp_path):
    repository = tmp_path / "models"
    shutil.copytree(TINY_MODELS / "curves-cgan", repository / "vec")
    card_path = repository / "vec" / "1" / "card.json"
    card = json.loads(card_path.read_text())
    card_path.write_text(json.dumps({**card, "name": "vec", "kind": "vectors", "picture": None}))
    with registered(kinds.KINDS, Vectors()), app_client(repository, tmp_path / "var") as api:
        assert api.get("/v1/models/vec").json()["card"]["kind"] == "vectors"
        r = api.post("/v1/models/vec/samples", json={"n": 2, "labels": ["upper", "lower"]})
        assert r.status_code == 200 and len(r.json()["samples"][0]) == 15
    with app_client(repository, tmp_path / "var2") as api:  # unknown kind: a load error naming it
        assert "unknown kind 'vectors'" in api.get("/v1/models").text


def test_an_endpoint_is_a_router_passed_to_create_app(tmp_path):
    router = APIRouter()

    @router.get("/v1/hello", operation_id="hello")
    async def hello() -> dict:
        return {"hello": "world"}

    from fastapi.testclient import TestClient

    from service.app import create_app
    from service.settings import Settings

    settings = Settings(repository=str(TINY_MODELS), data=tmp_path, redis_url="redis://127.0.0.1:1/0")
    with TestClient(create_app(settings, routers=(router,))) as api:
        assert api.get("/v1/hello").json() == {"hello": "world"}
        assert "/v1/hello" in api.get("/openapi.json").json()["paths"]


@pytest.mark.parametrize("route", formats.ROUTES)
def test_every_route_lists_exactly_the_formats_whose_method_it_calls(route):
    for name in formats.names(route):
        assert route in formats.FORMATS[name].routes()
