"""GanDataset: a torch IterableDataset of generated, labelled samples streamed from /v1/datasets.

Sample i depends only on (seed, i), so a dataset is a range of indices that anyone can cut: each
DDP rank takes a contiguous part of [0, n), and each DataLoader worker a part of its rank's; a
worker streams its part as WebDataset tar and, if the connection drops, asks again from the index
after the last sample it received, which gives exactly the samples an unbroken stream would have.
torch is imported only when the dataset is built, so the client installs without it.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ganserve_client.client import Client


def split(lo: int, hi: int, parts: int, part: int) -> tuple[int, int]:
    """The part-th of `parts` contiguous, nearly equal ranges of [lo, hi)."""
    size = hi - lo
    return lo + size * part // parts, lo + size * (part + 1) // parts


def _base():
    try:
        import torch.utils.data
    except ImportError as missing:  # say how to get a torch that fits, not just that there is none
        raise ImportError("GanDataset needs torch and Pillow: `pip install 'clients/python[torch]'`; on a machine "
                          "without a GPU install the CPU build first: `pip install torch --index-url "
                          "https://download.pytorch.org/whl/cpu`") from missing
    return torch.utils.data.IterableDataset


class GanDataset(_base()):  # type: ignore[misc]
    """Generated samples of `model` as (tensor, label): float32 (c, h, w) in [0, 1], then `transform`.

    `labels` as /v1/datasets takes them ({label: count} for a class-balanced set, interleaved by
    default so every stretch of the stream is balanced; none: a conditional model cycles through its
    labels); `n` defaults to the counts' sum. Other fields (mode, oversample, threshold, truncation,
    version) go to the service as they are. `rank` and `world_size` default to torch.distributed's
    when it is initialised, else a single process. An unconditional model's label is -1.
    """

    def __init__(self, url: str, model: str, n: int | None = None, *, seed: int = 0,
                 labels: dict | None = None, order: str | None = "interleaved",
                 transform: Callable | None = None, rank: int | None = None, world_size: int | None = None,
                 key: str | None = None, retries: int = 5, timeout: float = 120.0, **options):
        super().__init__()
        if n is None:
            if not isinstance(labels, dict):
                raise ValueError("n: required unless labels are {label: count}")
            n = sum(labels.values())
        self.url, self.model, self.n, self.seed, self.labels = url, model, int(n), seed, labels
        self.order = order if isinstance(labels, dict) else None  # a list is its own order
        self.transform, self.key, self.retries, self.timeout, self.options = transform, key, retries, timeout, options
        self.rank, self.world_size = _distributed(rank, world_size)

    def __len__(self) -> int:
        lo, hi = split(0, self.n, self.world_size, self.rank)
        return hi - lo

    def indices(self) -> tuple[int, int]:
        """[lo, hi): this rank's, and within it this DataLoader worker's, range of the dataset."""
        import torch.utils.data

        lo, hi = split(0, self.n, self.world_size, self.rank)
        info = torch.utils.data.get_worker_info()
        if info is not None:
            lo, hi = split(lo, hi, info.num_workers, info.id)
        return lo, hi

    def __iter__(self):
        import torch

        lo, hi = self.indices()
        if hi <= lo:
            return
        fields = {k: v for k, v in {"seed": self.seed, "labels": self.labels, "order": self.order,
                                    **self.options}.items() if v is not None}
        with Client(self.url, key=self.key, timeout=self.timeout) as client:
            for item in client.iter_dataset(self.model, hi - lo, start=lo, retries=self.retries, **fields):
                image = item.image[None] if item.image.ndim == 2 else item.image.transpose(2, 0, 1)  # (c, h, w)
                tensor = torch.from_numpy(np.array(image)).float().div_(255)  # a copy: PIL's array is read-only
                if self.transform is not None:
                    tensor = self.transform(tensor)
                yield tensor, (-1 if item.label is None else item.label)


def _distributed(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """(rank, world size): as given, else torch.distributed's when initialised, else (0, 1)."""
    if rank is None or world_size is None:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            rank = dist.get_rank() if rank is None else rank
            world_size = dist.get_world_size() if world_size is None else world_size
    rank, world_size = rank or 0, world_size or 1
    if not 0 <= rank < world_size:
        raise ValueError(f"rank: {rank} is not in 0..{world_size - 1}")
    return rank, world_size
