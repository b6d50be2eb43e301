"""Recording the truncation table in a card leaves every other byte of it as it was."""
import json
import shutil

from tests.utils import ROOT
from training.truncation import record


def test_record_adds_one_key_and_changes_nothing_else(tmp_path):
    path = tmp_path / "card.json"
    shutil.copy(ROOT / "models" / "mnist-dcgan" / "1" / "card.json", path)
    before = json.loads(path.read_text())
    before.pop("truncation", None)
    record(path, {"by_psi": [{"psi": 0.5, "precision": 0.9}]})
    after = json.loads(path.read_text())
    assert after.pop("truncation") == {"by_psi": [{"psi": 0.5, "precision": 0.9}]}
    assert after == before and list(after) == list(before)
    assert path.read_text() == json.dumps({**before, "truncation": {"by_psi": [{"psi": 0.5, "precision": 0.9}]}},
                                          indent=2) + "\n"
