"""The architecture's one rule: dependencies run one way. ganserve (the CLI) → training → service; the client alone."""
import ast
import subprocess
import sys

import pytest

from tests.utils import ROOT

# package -> the top-level modules it must never import
FORBIDDEN = {
    "service": {"training", "torch", "ganserve", "mlxtend", "ganserve_client"},
    "training": {"ganserve"},
    "ganserve_client": {"service", "training", "ganserve"},  # installed alone: it speaks HTTP only
}


def imports_of(path) -> set[str]:
    """Top-level module names a source file imports, at any depth (lazy imports inside functions too)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_import_runs_against_the_direction(package):
    wrong = {str(path.relative_to(ROOT)): sorted(imports_of(path) & FORBIDDEN[package])
             for path in sorted((ROOT / package).rglob("*.py"))}
    assert {path: names for path, names in wrong.items() if names} == {}


def test_the_direction_test_sees_lazy_imports(tmp_path):
    source = tmp_path / "lazy.py"
    source.write_text("def f():\n    from training.trainer import train\n    import torch.nn\n")
    assert imports_of(source) == {"training", "torch"}


def test_importing_the_service_leaves_torch_out():
    code = ("import sys, service.app, service.sampling, service.jobs.submit, service.api.samples, ganserve.cli; "
            "service.app.create_app(); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"
