"""GanDataset against the real server: ranks and workers split the indices, a dropped connection resumes
exactly, and a real classifier trains through a multi-worker DataLoader."""
from __future__ import annotations

import io

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from ganserve_client import GanDataset  # noqa: E402
from tests.utils import DroppingProxy  # noqa: E402

LABELS = {str(d): 12 for d in range(10)}  # 120 samples, interleaved


def whole(api, **extra) -> dict:
    body = {"model": "mnist-cgan", "labels": LABELS, "order": "interleaved", "seed": 3, **extra}
    return np.load(io.BytesIO(api.post("/v1/datasets", json=body).content))


def as_arrays(pairs) -> tuple[np.ndarray, np.ndarray]:
    images = np.stack([np.rint(t.numpy()[0] * 255).astype(np.uint8) for t, _ in pairs])
    return images, np.asarray([int(label) for _, label in pairs])


def test_ranks_split_the_dataset_into_ranges_that_add_up_to_it(serving_server, serving_api):
    arrays = whole(serving_api)
    parts = [GanDataset(serving_server.url, "mnist-cgan", labels=LABELS, seed=3, rank=r, world_size=3) for r in range(3)]
    assert [len(p) for p in parts] == [40, 40, 40]
    pairs = [pair for part in parts for pair in part]
    x, y = as_arrays(pairs)
    np.testing.assert_array_equal(x, arrays["x"])
    np.testing.assert_array_equal(y, arrays["y"])
    assert pairs[0][0].dtype == torch.float32 and pairs[0][0].shape == (1, 28, 28) and 0 <= pairs[0][0].min()
    again = as_arrays(list(parts[1]))
    np.testing.assert_array_equal(again[0], x[40:80])  # deterministic for a seed


def test_a_dropped_connection_resumes_at_the_next_index_exactly(serving_server, serving_api):
    arrays = whole(serving_api, mode="nice", oversample=2)
    proxy = DroppingProxy(("127.0.0.1", serving_server.port), after=20_000, drops=2)  # ~ 40 samples a cut
    try:
        data = GanDataset(proxy.url, "mnist-cgan", labels=LABELS, seed=3, mode="nice", oversample=2,
                          transform=lambda t: t * 2 - 1)
        pairs = [(t.add(1).div(2), label) for t, label in data]
    finally:
        proxy.close()
    assert proxy.dropped == 2
    x, y = as_arrays(pairs)
    np.testing.assert_array_equal(x, arrays["x"])
    np.testing.assert_array_equal(y, arrays["y"])


@pytest.mark.system
def test_a_classifier_trains_through_a_two_worker_dataloader(serving_server, serving_api):
    from torch import nn

    torch.manual_seed(0)
    arrays = whole(serving_api)
    data = GanDataset(serving_server.url, "mnist-cgan", labels=LABELS, seed=3)
    loader = torch.utils.data.DataLoader(data, batch_size=16, num_workers=2)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(8 * 14 * 14, 10))
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    seen, losses = [], []
    for epoch in range(2):
        for x, y in loader:
            loss = nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
            if epoch == 0:
                seen += list(zip(x, y))
    # the two workers' ranges together are the dataset, each sample once
    x, y = as_arrays(seen)
    order = np.lexsort(x.reshape(len(x), -1).T)
    reference = np.lexsort(arrays["x"].reshape(len(x), -1).T)
    np.testing.assert_array_equal(x[order], arrays["x"][reference])
    assert sorted(y.tolist()) == sorted(arrays["y"].tolist())
    assert len(losses) == 2 * 8 and np.isfinite(losses).all() and np.mean(losses[-4:]) < np.mean(losses[:4])


def test_rgb_images_come_as_three_channel_tensors(serving_server, serving_api):
    body = {"model": "image-cgan", "labels": {"0": 3, "5": 2}, "order": "interleaved", "seed": 1}
    arrays = np.load(io.BytesIO(serving_api.post("/v1/datasets", json=body).content))
    pairs = list(GanDataset(serving_server.url, "image-cgan", labels={"0": 3, "5": 2}, seed=1))
    assert [t.shape for t, _ in pairs] == [(3, 16, 16)] * 5 and [label for _, label in pairs] == arrays["y"].tolist()
    images = np.stack([np.rint(t.numpy().transpose(1, 2, 0) * 255).astype(np.uint8) for t, _ in pairs])
    np.testing.assert_array_equal(images, arrays["x"])  # the same RGB pixels as the npz, (n, h, w, 3)
