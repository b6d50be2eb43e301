"""The client installs beside any torch already there: its [torch] extra pins no version pip would have to fetch."""
import json
import subprocess
import sys
import tomllib
from importlib.metadata import version

import pytest
from packaging.requirements import Requirement

from tests.utils import ROOT

CLIENT = ROOT / "clients" / "python"


def test_the_torch_extra_accepts_every_torch_from_2_0_on():
    extra = tomllib.loads((CLIENT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["torch"]
    torch = next(Requirement(r) for r in extra if Requirement(r).name == "torch")
    for release in ("2.0.0", "2.4.1", "2.13.0", "2.13.0+cpu", "3.0.0", version("torch")):
        assert torch.specifier.contains(release, prereleases=True), release


@pytest.mark.system  # a pip subprocess building the client
def test_installing_the_torch_extra_where_torch_is_installed_fetches_nothing_but_the_client():
    """pip without an index: it resolves only if the torch (and Pillow) already installed satisfy the extra."""
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--report", "-",
                           "--no-index", "--no-build-isolation", "--no-cache-dir", f"{CLIENT}[torch]"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert [item["metadata"]["name"] for item in json.loads(done.stdout)["install"]] == ["ganserve-client"]
