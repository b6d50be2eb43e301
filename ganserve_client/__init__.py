"""ganserve's Python client: sync `Client`, async `AsyncClient`, and `GanDataset` for torch.

Needs only httpx and numpy; GanDataset (and streaming datasets sample by sample) also need torch
and Pillow, imported when first used.
"""
from ganserve_client._core import ApiError, Event, Job, Model, Retry, Samples
from ganserve_client.aio import AsyncClient
from ganserve_client.client import Client

__all__ = ["ApiError", "AsyncClient", "Client", "Event", "GanDataset", "Job", "Model", "Retry", "Samples"]
__version__ = "0.1.0"


def __getattr__(name: str):
    if name == "GanDataset":  # imports torch: only when asked for
        from ganserve_client.dataset import GanDataset

        return GanDataset
    raise AttributeError(f"module 'ganserve_client' has no attribute {name!r}")
