"""The Python client (ganserve_client) against the real server: typed arrays, datasets, models, uploads,
jobs followed over SSE; retries on 429/503 honouring Retry-After; installable with httpx and numpy only."""
from __future__ import annotations

import asyncio
import subprocess
import sys

import httpx
import numpy as np
import pytest

from ganserve_client import ApiError, AsyncClient, Client, Retry
from tests.test_boundary import imports_of
from tests.utils import ROOT


@pytest.fixture
def client(serving_server):
    with Client(serving_server.url) as c:
        yield c


def test_samples_come_back_as_arrays_with_labels(client, serving_api):
    got = client.samples("mnist-cgan", labels={"3": 2, "7": 1}, seed=5, mode="nice", oversample=3)
    assert got.x.dtype == np.uint8 and got.x.shape == (3, 28, 28) and got.labels == ["3", "3", "7"]
    assert got.model == "mnist-cgan" and got.version == 1 and got.seed == 5 and got.scores.shape == (3,)
    raw = np.load(__import__("io").BytesIO(serving_api.post("/v1/models/mnist-cgan/samples", json={
        "labels": {"3": 2, "7": 1}, "seed": 5, "mode": "nice", "oversample": 3, "format": "npz"}).content))
    np.testing.assert_array_equal(got.x, raw["x"])
    points = client.samples("quadratic", 4, seed=1)
    assert points.x.dtype == np.float32 and points.x.shape == (4, 2) and points.y is None


def test_datasets_as_arrays_and_as_a_stream_agree(client):
    whole = client.dataset("mnist-cgan", labels={"1": 20, "2": 20}, order="interleaved", seed=3)
    window = client.dataset("mnist-cgan", 10, labels={"1": 20, "2": 20}, order="interleaved", seed=3, start=25)
    np.testing.assert_array_equal(window.x, whole.x[25:35])
    assert window.start == 25 and window.labels == whole.labels[25:35]
    items = list(client.iter_dataset("mnist-cgan", 30, start=5, labels={"1": 20, "2": 20}, order="interleaved",
                                     seed=3))
    assert [i.index for i in items] == list(range(5, 35))
    np.testing.assert_array_equal(np.stack([i.image for i in items]), whole.x[5:35])
    assert [i.label for i in items] == whole.y[5:35].tolist()


def test_models_with_their_cards(client):
    names = {m.name for m in client.models()}
    assert {"quadratic", "mnist-cgan"} <= names
    cgan = client.model("mnist-cgan")
    assert cgan.default == 1 and cgan.card["family"] == "mnist-cgan" and cgan.labels == list("0123456789")


def test_errors_are_api_errors_naming_the_field(client):
    with pytest.raises(ApiError) as info:
        client.samples("quadratic", 5000)
    assert info.value.status == 422 and info.value.field == "n" and "1024" in info.value.message
    with pytest.raises(ApiError) as info:
        client.model("nope")
    assert info.value.status == 404


def test_uploads_take_arrays_and_the_services_own_npz(client, tmp_path):
    digits = client.samples("mnist-cgan", labels={"4": 3, "9": 2}, seed=1)
    meta = client.upload({"x": digits.x, "y": digits.y, "label_names": np.asarray(digits.label_names)})
    assert meta["n"] == 5 and meta["classes"] == ["4", "9"]
    path = tmp_path / "aug.zip"
    path.write_bytes(client.http.post("/v1/datasets", json={"model": "mnist-cgan", "labels": {"0": 2, "1": 2},
                                                            "format": "zip"}).content)
    assert client.upload(path)["classes"] == ["0", "1"]


def fake(answers: list, seen: list) -> httpx.MockTransport:
    """A transport answering from a list: (status, headers) pairs, then 200 {}."""
    def handle(request):
        seen.append(request.method)
        status, headers = answers.pop(0) if answers else (200, {})
        if status == "drop":
            raise httpx.ConnectError("dropped")
        return httpx.Response(status, headers=headers, json={"models": [], "error": {"status": status,
                                                                                      "message": "busy"}})
    return httpx.MockTransport(handle)


def test_503_and_429_are_retried_honouring_retry_after(monkeypatch):
    waits = []
    monkeypatch.setattr("ganserve_client.client.time.sleep", waits.append)
    seen = []
    answers = [(503, {"retry-after": "2"}), (429, {"retry-after": "0"}), (503, {}), ("drop", {})]
    with Client("http://x", transport=fake(answers, seen), retry=Retry(attempts=5, backoff=0.25)) as c:
        assert c.models() == []
    assert len(seen) == 5 and waits[:2] == [2.0, 0.0] and 0.5 <= waits[2] <= 1.0 and 1.0 <= waits[3] <= 2.0  # 0.25·2^attempt·[½, 1]
    seen.clear()
    with Client("http://x", transport=fake([(503, {"retry-after": "1"})] * 9, seen), retry=Retry(attempts=2)) as c:
        with pytest.raises(ApiError) as info:
            c.models()
    assert info.value.status == 503 and len(seen) == 3  # gave up after 2 retries


def test_a_failed_connection_is_not_retried_for_a_job_submission(monkeypatch):
    monkeypatch.setattr("ganserve_client.client.time.sleep", lambda s: None)
    seen = []
    with Client("http://x", transport=fake([("drop", {})], seen)) as c:
        with pytest.raises(httpx.ConnectError):
            c.submit("quadratic")  # it may have been recorded: sending it again could train twice
    assert seen == ["POST"]


def test_the_async_client_answers_the_same(serving_server, client):
    async def go():
        async with AsyncClient(serving_server.url) as c:
            return await asyncio.gather(c.samples("mnist-cgan", labels=["5", "6"], seed=2), c.model("quadratic"),
                                        c.dataset("mnist-cgan", 4, seed=2))
    samples, model, dataset = asyncio.run(go())
    np.testing.assert_array_equal(samples.x, client.samples("mnist-cgan", labels=["5", "6"], seed=2).x)
    assert model.name == "quadratic" and len(dataset) == 4


def test_the_async_client_streams_a_dataset_and_resumes_a_dropped_connection_exactly(serving_server, client):
    from tests.utils import DroppingProxy

    labels = {str(d): 6 for d in range(10)}
    whole = client.dataset("mnist-cgan", labels=labels, order="interleaved", seed=4)
    proxy = DroppingProxy(("127.0.0.1", serving_server.port), after=12_000, drops=2)  # two cuts within the 60 samples

    async def go(url, **window):
        async with AsyncClient(url) as c:
            return [item async for item in c.iter_dataset("mnist-cgan", labels=labels, order="interleaved", seed=4,
                                                          **window)]
    try:
        items = asyncio.run(go(proxy.url))
    finally:
        proxy.close()
    assert proxy.dropped == 2
    assert [i.index for i in items] == list(range(60))
    np.testing.assert_array_equal(np.stack([i.image for i in items]), whole.x)
    assert [i.label for i in items] == whole.y.tolist()
    window = asyncio.run(go(serving_server.url, n=7, start=50))
    assert [i.index for i in window] == list(range(50, 57)) and [i.label for i in window] == whole.y[50:57].tolist()


@pytest.mark.system
def test_a_job_is_submitted_followed_and_waited_for(server, worker):
    events = []
    with Client(server.url) as c:
        job = c.submit("quadratic", steps=40, model="client-job", params={"g_hidden": 4, "d_hidden": 4})
        assert job.state == "queued"
        done = c.wait(job.id, timeout=180, on_event=events.append)
    assert done.state == "succeeded", done.error
    assert done.result["model"] == "client-job" and events[-1].name == "state"
    assert any(e.name == "progress" for e in events) and events[-1].data["state"] == "succeeded"


@pytest.mark.system
def test_a_job_is_cancelled_and_the_async_wait_sees_it(server, worker):
    async def go():
        async with AsyncClient(server.url) as c:
            job = await c.submit("quadratic", steps=200000, model="client-cancelled")
            await c.cancel(job.id)
            return await c.wait(job.id, timeout=120)
    assert asyncio.run(go()).state == "cancelled"


def test_the_client_needs_only_httpx_and_numpy():
    stdlib = set(sys.stdlib_module_names)
    lazily = {"torch", "PIL"}  # GanDataset and streamed datasets: the `torch` extra
    found = set().union(*(imports_of(p) for p in (ROOT / "ganserve_client").glob("*.py")))
    assert found - stdlib - {"ganserve_client", "httpx", "numpy"} == lazily
    code = "import sys, ganserve_client; print(sorted(m for m in ('torch', 'PIL', 'service', 'training') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


@pytest.mark.system
def test_the_client_builds_as_a_wheel_of_its_own(tmp_path):
    import shutil
    import zipfile

    source = shutil.copytree(ROOT / "clients" / "python", tmp_path / "src", symlinks=False,  # builds leave files
                             ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path), str(source)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("ganserve_client-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(next(n for n in names if n.endswith("METADATA"))).decode()
    assert {n.split("/")[0] for n in names if not n.startswith("ganserve_client-")} == {"ganserve_client"}
    assert {p.name for p in (ROOT / "ganserve_client").glob("*.py")} == {n.split("/")[1] for n in names
                                                                          if n.startswith("ganserve_client/")}
    requires = sorted(line.split(":", 1)[1].strip() for line in metadata.splitlines() if line.startswith("Requires-Dist"))
    assert [r for r in requires if "extra" not in r] == ["httpx>=0.27", "numpy>=1.24"]
