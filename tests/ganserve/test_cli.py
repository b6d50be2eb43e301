"""The ganserve command as a user runs it."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.utils import ROOT, export_tiny


def test_offline_train_publishes_into_the_writable_folder_numbered_after_every_other(tmp_path):
    writable, shipped = tmp_path / "var" / "models", tmp_path / "models"
    export_tiny("quadratic", shipped)  # a "shipped" quadratic v1
    env = {**os.environ, "GANSERVE_REPOSITORY": f"{writable}:{shipped}", "GANSERVE_DATA": str(tmp_path / "var")}
    out = subprocess.run([sys.executable, "-m", "ganserve.cli", "train", "quadratic", "--steps", "2",
                          "--param", "g_hidden=8", "--param", "d_hidden=8"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["published"] == str(writable / "quadratic" / "2")
    assert not (shipped / "quadratic" / "2").exists()  # the shipped folder untouched
