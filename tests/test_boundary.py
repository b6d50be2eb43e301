"""The serving side never needs torch."""
import subprocess
import sys


def test_importing_the_service_leaves_torch_out():
    code = ("import sys, service.app, service.sampling, service.encoding, service.jobs, service.cli; "
            "service.app.create_app(); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
