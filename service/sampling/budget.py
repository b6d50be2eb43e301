"""One memory budget for the heavy work in flight in an API process.

A request's arrays (its candidates, their images, the encoded body) are counted against `limit` bytes
before any is made: a request that would pass the budget while others hold it waits for nobody and is
refused at once (Overloaded: 503 with Retry-After), and one that could never fit is a LimitError (422).
Measured before this: 40 concurrent `nice` requests of 1,024 samples drew 16,384 candidates each and the
process grew to 1.9 GB, and kept 0.85-1.7 GB once they were done. Once the budget is empty again after
heavy work, freed heap memory is handed back to the system (malloc_trim).
"""
from __future__ import annotations

import contextlib
import threading

from service.limits import LimitError
from service.repository.sessions import trim_heap
from service.sampling.batching import Overloaded

SMALL = 4 * 2**20  # work below this is not counted: an n=1 request must not pay for the lock
TRIM_AFTER = 64 * 2**20  # heavy work since the last trim after which an empty budget trims the heap


class WorkBudget:
    def __init__(self, limit: int):
        self.limit, self.used, self.since_trim = limit, 0, 0
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def hold(self, nbytes: int, field: str = "n"):
        """Count `nbytes` of work in flight while the block runs."""
        if nbytes < SMALL:
            yield
            return
        if nbytes > self.limit:
            raise LimitError(f"{field}: the request's arrays take about {nbytes >> 20} MB, over the limit of "
                             f"{self.limit >> 20} MB of work in flight (max_work_bytes); ask for fewer samples")
        with self._lock:
            if self.used + nbytes > self.limit:
                raise Overloaded(f"work: {self.used >> 20} MB of requests are being computed, the limit "
                                 f"(max_work_bytes) leaves no room for {nbytes >> 20} MB more; retry shortly")
            self.used += nbytes
        try:
            yield
        finally:
            with self._lock:
                self.used -= nbytes
                self.since_trim += nbytes
                trim = self.used == 0 and self.since_trim >= TRIM_AFTER
                if trim:
                    self.since_trim = 0
            if trim:
                trim_heap()
