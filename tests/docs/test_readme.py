"""Every shell command of the README runs, in order, against a live `ganserve up` (its own Redis, the key it
printed, the shipped models), and answers what the README says it answers.

How the README is read (tests/docs/readme.py):
- Fenced ```sh blocks run, in the order they appear, each as one bash script with `set -euo pipefail`, in one
  working folder of their own (empty: an example makes the files it uses). A variable a block sets (KEY=, ID=)
  is seen by the blocks after it. `.venv/` there is the virtual environment running the tests.
- `localhost:8000` and `127.0.0.1:8000` are this test's server; the placeholder assignment `KEY=...` gets the
  key `ganserve up` printed.
- Every command must exit 0. Every curl call must answer a 2xx (and finish within 15 minutes), unless a comment
  line `# -> NNN` (the README's way of showing an answer) right under the command declares its status: then
  it must answer exactly NNN.
- A block that cannot run here (`make run` itself, `docker compose`, hour-long training) has the marker
  `<!-- readme: skip: why -->` on the nearest non-blank line above its fence (invisible once rendered); the
  test reports it as skipped with that reason. Other fences (python, the layout) are not run.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs.readme import RUN, Block, blocks
from tests.ganserve.launched import Launched
from tests.utils import ROOT

pytestmark = pytest.mark.system
README = ROOT / "README.md"
BLOCKS = [b for b in blocks(README.read_text()) if b.language in RUN]
BLOCK_SECONDS = 1800  # a block that trains waits for its job; a busy machine takes minutes

# curl as the README runs it: its status checked against what the README says (2xx unless `# -> NNN`).
PREAMBLE = r'''set -euo pipefail
__status=2xx; __line=0
__expect() { __status=$1; __line=$2; }
curl() {
  local headers rc=0 status
  headers=$(mktemp)
  command curl --silent --show-error --max-time 900 --dump-header "$headers" "$@" || rc=$?
  status=$(sed -n 's/^HTTP\/[0-9.]* \([0-9][0-9][0-9]\).*/\1/p' "$headers" | tail -n 1)
  rm -f "$headers"
  if [ "$rc" != 0 ]; then echo "README line $__line: curl exited with $rc (HTTP ${status:-none})" >&2; return "$rc"; fi
  if [ "$__status" = 2xx ]; then case "$status" in 2??) return 0;; esac
  elif [ "$status" = "$__status" ]; then return 0; fi
  echo "README line $__line: curl answered HTTP $status; the README says $__status" >&2
  return 22
}
trap 'echo "README line $__line failed: $BASH_COMMAND" >&2' ERR
set -a  # every variable a block sets reaches the blocks after it
'''


@pytest.fixture(scope="module")
def up(tmp_path_factory):
    """`ganserve up` on the shipped models, as `make run` starts it, and the folder the commands run in."""
    data = tmp_path_factory.mktemp("readme-var")
    # One torch thread in the worker, as every worker of the suite (tests/conftest.py): two threads on two busy
    # cores spin against each other (measured: 500 quadratic steps 64 s against 2.6-5.5 s on one thread).
    launched = Launched(data, f"{data / 'models'}:{ROOT / 'models'}", GANSERVE_TRAIN_THREADS="1")
    workdir = tmp_path_factory.mktemp("readme")
    (workdir / ".venv").symlink_to(Path(sys.prefix))
    (workdir / "models").symlink_to(ROOT / "models")  # the commands run where a newcomer is: the repository's root
    launched.workdir = workdir
    launched.state = {k: v for k, v in os.environ.items() if not k.startswith("GANSERVE_")}
    yield launched
    assert launched.interrupt() == 0, "\n".join(launched.lines)


def script(block: Block, port: int, key: str | None) -> str:
    """The block as bash: each command preceded by the status it must answer; the server and key filled in."""
    parts = [PREAMBLE]
    for command in block.commands:
        text = re.sub(r"(localhost|127\.0\.0\.1):8000\b", rf"\g<1>:{port}", command.text)
        if key:
            text = re.sub(r"^KEY=\.\.\.", f"KEY='{key}'", text)
        parts += [f"__expect {command.status} {command.line}", text]
    parts.append('env -0 > "$README_STATE"')
    return "\n".join(parts) + "\n"


@pytest.mark.parametrize("block", BLOCKS, ids=[f"line-{b.line}" for b in BLOCKS])
def test_readme_block_runs_as_written(up, block):
    if block.skip is not None:
        pytest.skip(f"README line {block.line}: {block.skip}")
    state = up.workdir.parent / f"{up.workdir.name}.state"
    done = subprocess.run(["bash", "-c", script(block, up.port, up.key)], cwd=up.workdir, capture_output=True,
                          text=True, env={**up.state, "README_STATE": str(state)}, timeout=BLOCK_SECONDS, check=False)
    assert done.returncode == 0, (f"README line {block.line}:\n{block.text}\n--- stderr\n{done.stderr[-4000:]}"
                                  f"\n--- stdout\n{done.stdout[-2000:]}")
    up.state = dict(item.split("=", 1) for item in state.read_text().split("\0") if "=" in item)


def test_every_block_that_does_not_run_says_why():
    assert all(b.skip for b in BLOCKS if b.skip is not None), [b.line for b in BLOCKS if b.skip == ""]


def test_the_readme_runs_a_command_of_every_part_of_the_api():
    """A rewrite that skipped the tour would pass the test above vacuously: each part must have a command that runs."""
    ran = "\n".join(c.text for b in BLOCKS if b.skip is None for c in b.commands)
    for route in ("/v1/models", "/samples", "samples.png", "/v1/datasets", "/translate", "/v1/families", "/v1/jobs",
                  "/events", "/v1/data"):
        assert route in ran, f"no README command that runs calls {route}"
