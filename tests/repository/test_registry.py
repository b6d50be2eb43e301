"""The registry without HTTP: one numbering across folders, conflicts named, stale errors forgotten."""
from __future__ import annotations

import json
import shutil

import pytest

from service.repository import Repository, UnknownModel, next_version
from tests.utils import publish_tiny


@pytest.fixture
def folders(tmp_path):
    """A writable folder and a read-only shipped one holding dots v1."""
    writable, shipped = tmp_path / "var-models", tmp_path / "models"
    publish_tiny("quadratic", shipped, model="dots")
    return writable, shipped


def test_versions_are_numbered_across_every_folder(folders):
    writable, shipped = folders
    published = publish_tiny("quadratic", writable, model="dots", others=(shipped,))
    assert published == writable / "dots" / "2"
    assert next_version("dots", [writable, shipped]) == 3


def test_one_version_in_two_folders_is_a_load_error_naming_both(folders):
    writable, shipped = folders
    publish_tiny("quadratic", shipped, model="dots")  # shipped v2
    shutil.copytree(shipped / "dots" / "2", writable / "dots" / "2")
    repository = Repository([writable, shipped])
    repository.refresh()
    error = repository.entry("dots").errors[2]
    assert "<repository folder 1>/dots/2" in error and "<repository folder 2>/dots/2" in error
    assert str(writable) not in error  # no absolute path of the machine in what responses show
    assert repository.get("dots").version == 1  # never a silent pick: the older one serves
    with pytest.raises(UnknownModel, match="more than one folder"):
        repository.get("dots", 2)


def test_folders_that_are_not_plain_decimals_are_ignored(folders, caplog):
    _, shipped = folders
    for name in ("²", "٣", "v2", "2a"):
        shutil.copytree(shipped / "dots" / "1", shipped / "dots" / name)
    repository = Repository([shipped])
    repository.refresh()
    repository.refresh()
    assert sorted(repository.entry("dots").folders) == [1]
    assert sum("not a version folder" in r.message for r in caplog.records) == 4  # once each, not every scan


def test_a_fixed_version_loads_on_the_next_refresh_and_a_deleted_ones_error_goes(folders):
    _, shipped = folders
    broken = shipped / "dots" / "2"
    shutil.copytree(shipped / "dots" / "1", broken)
    card = json.loads((broken / "card.json").read_text())
    (broken / "card.json").write_text(json.dumps({**card, "latent": {**card["latent"], "dim": 50}}))
    repository = Repository([shipped])
    repository.refresh()
    assert "card.latent.dim" in repository.entry("dots").errors[2]
    (broken / "card.json").write_text(json.dumps(card))  # fixed in place
    repository.refresh()
    assert repository.entry("dots").errors == {} and repository.get("dots", 2).version == 2
    assert repository.get("dots").version == 1  # the default alias still points at 1
    shutil.copytree(broken, shipped / "dots" / "3")
    (shipped / "dots" / "3" / "generator.onnx").write_bytes(b"broken")
    repository.refresh()
    assert 3 in repository.entry("dots").errors
    shutil.rmtree(shipped / "dots" / "3")
    repository.refresh()
    assert repository.entry("dots").errors == {}
