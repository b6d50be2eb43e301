"""The family catalog the service validates jobs with matches the families' own configs."""
from training import catalog


def test_catalog_json_is_current():
    assert catalog.PATH.read_text() == catalog.render(), "stale: run `ganserve catalog`"
