"""The typed card: read once, written once, and checked against its ONNX files when a version loads."""
from __future__ import annotations

import json
import shutil

import pytest

from service.repository import Card, CardError, load
from tests.utils import publish_tiny


@pytest.fixture(scope="module")
def versions(tmp_path_factory):
    """A tiny unconditional image model and a conditional one, by the real exporter."""
    root = tmp_path_factory.mktemp("cards")
    return {"dcgan": publish_tiny("mnist-dcgan", root), "cgan": publish_tiny("mnist-cgan", root)}


def lying(folder, tmp_path, change) -> object:
    """A copy of a version folder whose card.json is changed by `change(card dict) -> JSON value`."""
    copy = tmp_path / "1"
    shutil.copytree(folder, copy)
    card = json.loads((copy / "card.json").read_text())
    (copy / "card.json").write_text(json.dumps(change(card)))
    return copy


def test_a_card_saved_is_the_card_loaded(versions, tmp_path):
    card = Card.load(versions["cgan"])
    assert card.labels == [str(d) for d in range(10)] and card.latent.dim == 8 and card.sample_shape == [1, 28, 28]
    card.save(tmp_path)
    assert Card.load(tmp_path) == card


@pytest.mark.parametrize("source, change, field", [
    ("dcgan", lambda c: {**c, "latent": {**c["latent"], "dim": 50}}, "card.latent.dim"),
    ("dcgan", lambda c: {**c, "labels": [str(d) for d in range(10)]}, "card.labels"),  # a dcgan G under a cgan card
    ("cgan", lambda c: {**c, "labels": None}, "card.labels"),
    ("dcgan", lambda c: {k: v for k, v in c.items() if k != "latent"}, "card.latent"),
    ("dcgan", lambda c: [c], "card.json"),  # a JSON list
    ("dcgan", lambda c: {**c, "sample_shape": [1, 32, 32]}, "card.sample_shape"),
    ("dcgan", lambda c: {**c, "kind": "movie"}, "card.kind"),
    ("dcgan", lambda c: {**c, "latent": {**c["latent"], "distribution": "cauchy"}}, "card.latent.distribution"),
])
def test_a_card_that_lies_about_its_onnx_files_is_a_load_error_naming_the_field(versions, tmp_path, source, change,
                                                                                   field):
    with pytest.raises(CardError, match=f"^{field}"):
        load("liar", 1, lying(versions[source], tmp_path, change))


def test_unreadable_card_is_a_load_error(versions, tmp_path):
    folder = lying(versions["dcgan"], tmp_path, lambda c: c)
    (folder / "card.json").write_text("{not json")
    with pytest.raises(CardError, match="^card.json: not readable JSON"):
        load("broken", 1, folder)
