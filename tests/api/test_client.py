"""A Python client generated from the live server's /openapi.json (openapi-python-client) works against it:
typed samples, a PNG, a job submitted with the API key, read back, listed and cancelled; typed errors."""
from __future__ import annotations

import importlib
import io
import subprocess
import sys

import httpx
import pytest
from PIL import Image

from tests.utils import Server

pytestmark = pytest.mark.system  # a client generated, a keyed server started: a few seconds
KEY = "client-key-3f1a"
PACKAGE = "ganserve_openapi_client"  # not ganserve_client: that name is the project's own client
# Binary bodies reach the client as File objects (the generator reads only JSON and octet-stream).
CONFIG = f"""post_hooks: []
project_name_override: {PACKAGE}
package_name_override: {PACKAGE}
content_type_overrides:
  image/png: application/octet-stream
  application/zip: application/octet-stream
"""


@pytest.fixture(scope="module")
def keyed(service_env, tmp_path_factory):
    log = tmp_path_factory.mktemp("client-server") / "server.log"
    srv = Server({**service_env, "GANSERVE_API_KEYS": KEY}, log)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def client(keyed, tmp_path_factory):
    """The package generated from what the running server publishes, imported from a temp folder."""
    folder = tmp_path_factory.mktemp("generated")
    (folder / "openapi.json").write_bytes(httpx.get(keyed.url + "/openapi.json").content)
    (folder / "config.yaml").write_text(CONFIG)
    subprocess.run([sys.executable, "-m", "openapi_python_client", "generate", "--path", "openapi.json",
                    "--output-path", f"out/{PACKAGE}", "--meta", "none", "--overwrite", "--config", "config.yaml"],
                   cwd=folder, check=True, capture_output=True, text=True)
    sys.path.insert(0, str(folder / "out"))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(folder / "out"))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def test_samples_come_back_typed(client, keyed):
    from ganserve_openapi_client import Client
    from ganserve_openapi_client.api.samples import sample_model
    from ganserve_openapi_client.models import SampledJson, SampleRequest, WalkRequest

    with Client(base_url=keyed.url) as api:
        samples = sample_model.sync("quadratic", client=api, body=SampleRequest(n=3, seed=7, truncation=0.8))
        assert isinstance(samples, SampledJson) and samples.model == "quadratic" and samples.seed == 7
        raw = httpx.post(keyed.url + "/v1/models/quadratic/samples", json={"n": 3, "seed": 7, "truncation": 0.8})
        assert samples.samples == raw.json()["samples"] and samples.truncation == 0.8
        walk = sample_model.sync("quadratic", client=api, body=SampleRequest(walk=WalkRequest(from_=7, to=8, steps=4),
                                                                             truncation=0.8))
        assert len(walk.samples) == 4 and walk.seed == 7 and walk.samples[0] == raw.json()["samples"][0]


def test_a_png_comes_back_as_a_file(client, keyed):
    from ganserve_openapi_client import Client
    from ganserve_openapi_client.api.samples import sample_png
    from ganserve_openapi_client.types import File

    with Client(base_url=keyed.url) as api:
        png = sample_png.sync("quadratic", client=api, n=20, seed=1)
    assert isinstance(png, File) and Image.open(io.BytesIO(png.payload.read())).format == "PNG"


def test_errors_come_back_as_the_error_body(client, keyed):
    from ganserve_openapi_client import Client
    from ganserve_openapi_client.api.jobs import submit_job
    from ganserve_openapi_client.api.samples import sample_model
    from ganserve_openapi_client.models import ErrorBody, JobRequest, SampleRequest

    with Client(base_url=keyed.url) as api:
        unknown = sample_model.sync("nope", client=api, body=SampleRequest())
        assert isinstance(unknown, ErrorBody) and unknown.error.status == 404 and "quadratic" in unknown.error.message
        too_many = sample_model.sync("quadratic", client=api, body=SampleRequest(n=5000))
        assert too_many.error.status == 422 and too_many.error.field == "n" and "1024" in too_many.error.message
        keyless = submit_job.sync(client=api, body=JobRequest(family="quadratic"))
        assert isinstance(keyless, ErrorBody) and keyless.error.status == 401


def test_a_job_is_submitted_with_the_key_read_back_and_cancelled(client, keyed):
    from ganserve_openapi_client import AuthenticatedClient, Client
    from ganserve_openapi_client.api.jobs import cancel_job, get_job, list_families, list_jobs, submit_job
    from ganserve_openapi_client.models import Job, JobRequest

    with AuthenticatedClient(base_url=keyed.url, token=KEY) as api:
        families = list_families.sync(client=api)
        assert "quadratic" in families.families.additional_properties
        submitted = submit_job.sync_detailed(client=api, body=JobRequest(family="quadratic", steps=2, model="from-client"))
        assert submitted.status_code == 202
        job = submitted.parsed
        assert isinstance(job, Job) and job.state == "queued" and job.config.steps == 2
        assert submitted.headers["location"] == job.links.self_
    with Client(base_url=keyed.url) as open_api:  # reading jobs needs the key too
        assert get_job.sync_detailed(job.id, client=open_api).status_code == 401
    with AuthenticatedClient(base_url=keyed.url, token=KEY) as api:
        again = get_job.sync(job.id, client=api)
        assert again.id == job.id and again.model == "from-client" and again.family == "quadratic"
        assert job.id in [j.id for j in list_jobs.sync(client=api).jobs]
        # Queued, it is cancelled and no worker trains it later by surprise; a worker of this test
        # session may have taken it already (2 steps), and then it stops or has finished.
        cancelled = cancel_job.sync(job.id, client=api)
        assert isinstance(cancelled, Job) and cancelled.id == job.id
        assert cancelled.state in ("cancelled", "succeeded") or cancelled.cancel_requested
