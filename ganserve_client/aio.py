"""The asynchronous client: the same calls as Client, awaited (httpx.AsyncClient underneath)."""
from __future__ import annotations

import asyncio
import time
from typing import Any, AsyncIterator

import httpx

from ganserve_client import _core, shards
from ganserve_client._core import Event, EventParser, Job, Model, Retry, Samples, body, check


class AsyncClient:
    """A ganserve service at `url`, for asyncio code; retries as Client does."""

    def __init__(self, url: str = "http://127.0.0.1:8000", key: str | None = None, timeout: float = 60.0,
                 retry: Retry | None = None, transport: httpx.AsyncBaseTransport | None = None):
        headers = {"authorization": f"Bearer {key}"} if key else {}
        self.http = httpx.AsyncClient(base_url=url, headers=headers, timeout=timeout, transport=transport)
        self.retry = retry or Retry()

    async def aclose(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    async def request(self, method: str, path: str, idempotent: bool = True, **kwargs) -> httpx.Response:
        for attempt in range(self.retry.attempts + 1):
            response = error = None
            try:
                response = await self.http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                error = exc
            if attempt == self.retry.attempts or not _core.should_retry(response, error, idempotent):
                if error is not None:
                    raise error
                return check(response)
            await asyncio.sleep(self.retry.wait(attempt, response))
        raise AssertionError("unreachable")

    async def samples(self, model: str, n: int | None = None, *, seed: int | None = None, mode: str = "plain",
                      labels: list | dict | None = None, oversample: int | None = None,
                      threshold: float | None = None, truncation: float | None = None,
                      version: int | None = None) -> Samples:
        fields = body(n=n, seed=seed, mode=mode, labels=labels, oversample=oversample, threshold=threshold,
                      truncation=truncation, version=version, format="npz")
        return _core.samples_of(await self.request("POST", f"/v1/models/{model}/samples", json=fields))

    async def dataset(self, model: str, n: int | None = None, **options) -> Samples:
        fields = body(model=model, n=n, **options, format="npz")
        return _core.samples_of(await self.request("POST", "/v1/datasets", json=fields))

    async def iter_dataset(self, model: str, n: int | None = None, *, start: int = 0, retries: int = 5,
                           **options) -> AsyncIterator[shards.Item]:
        """Client.iter_dataset, as an async iterator: samples as the tar streams, resumed exactly after a drop."""
        fields = body(model=model, **options, format="tar")
        end = None if n is None else start + n
        labelled = None
        failures = 0
        while end is None or start < end:
            request = {**fields, "start": start, **({} if end is None else {"n": end - start})}
            try:
                async with self.http.stream("POST", "/v1/datasets", json=request) as response:
                    if not response.is_success:
                        await response.aread()
                        if _core.should_retry(response, None, True) and failures < retries:
                            failures += 1
                            await asyncio.sleep(self.retry.wait(failures, response))
                            continue
                        check(response)
                    total = start + int(response.headers["x-count"])
                    end = total if end is None else end
                    if labelled is None:
                        labelled = (await self.model(model, options.get("version"))).labels is not None
                    async for item in shards.aread(response.aiter_bytes(), labelled):
                        yield item
                        start = item.index + 1
                        failures = 0  # progress: the budget is for failures in a row
                if start < end:
                    raise shards.Truncated(f"the stream ended at sample {start} of {end}")
            except (httpx.TransportError, shards.Truncated):
                failures += 1
                if failures > retries:
                    raise
                await asyncio.sleep(self.retry.wait(failures - 1, None))

    async def models(self) -> list[Model]:
        return [Model.of(m) for m in (await self.request("GET", "/v1/models")).json()["models"]]

    async def model(self, name: str, version: int | None = None) -> Model:
        params = {} if version is None else {"version": version}
        return Model.of((await self.request("GET", f"/v1/models/{name}", params=params)).json())

    async def upload(self, data: Any, filename: str | None = None) -> dict:
        name, raw = _core.upload_file(data, filename)
        return (await self.request("POST", "/v1/data", idempotent=False, files={"file": (name, raw)})).json()

    async def submit(self, family: str, **fields) -> Job:
        answer = await self.request("POST", "/v1/jobs", idempotent=False, json=body(family=family, **fields))
        return Job.of(answer.json())

    async def job(self, job_id: str) -> Job:
        return Job.of((await self.request("GET", f"/v1/jobs/{job_id}")).json())

    async def jobs(self, state: str | None = None) -> list[Job]:
        params = {} if state is None else {"state": state}
        return [Job.of(j) for j in (await self.request("GET", "/v1/jobs", params=params)).json()["jobs"]]

    async def cancel(self, job_id: str) -> Job:
        return Job.of((await self.request("DELETE", f"/v1/jobs/{job_id}", idempotent=False)).json())

    async def events(self, job_id: str) -> AsyncIterator[Event]:
        async with self.http.stream("GET", f"/v1/jobs/{job_id}/events",
                                    timeout=httpx.Timeout(60, read=None)) as response:
            if not response.is_success:
                await response.aread()
                check(response)
            parser = EventParser()
            async for line in response.aiter_lines():
                event = parser.feed(line)
                if event is not None:
                    yield event

    async def wait(self, job_id: str, timeout: float | None = None, on_event=None) -> Job:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                async for event in self.events(job_id):
                    if on_event is not None:
                        on_event(event)
                    if event.name == "state" and event.data["state"] in _core.FINAL:
                        return await self.job(job_id)
                    if deadline is not None and time.monotonic() > deadline:
                        raise TimeoutError(f"job {job_id} still running after {timeout} s")
            except httpx.TransportError:
                pass
            job = await self.job(job_id)
            if job.done:
                return job
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {job.state} after {timeout} s")
