"""The synchronous client: samples, datasets, models and their cards, uploads, training jobs."""
from __future__ import annotations

import time
from typing import Any, Iterator

import httpx

from ganserve_client import _core, shards
from ganserve_client._core import ApiError, Event, EventParser, Job, Model, Retry, Samples, body, check


class Client:
    """A ganserve service at `url`. `key` is sent as a bearer token (job submission, uploads).

    Answers 429 and 503 are retried, waiting Retry-After (else backoff); so are failed connections of
    requests that are safe to repeat (everything but job submission, cancel and uploads).
    """

    def __init__(self, url: str = "http://127.0.0.1:8000", key: str | None = None, timeout: float = 60.0,
                 retry: Retry | None = None, transport: httpx.BaseTransport | None = None):
        headers = {"authorization": f"Bearer {key}"} if key else {}
        self.http = httpx.Client(base_url=url, headers=headers, timeout=timeout, transport=transport)
        self.retry = retry or Retry()

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def request(self, method: str, path: str, idempotent: bool = True, **kwargs) -> httpx.Response:
        """One request with the retry rule; ApiError for an error answer."""
        for attempt in range(self.retry.attempts + 1):
            response = error = None
            try:
                response = self.http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                error = exc
            last = attempt == self.retry.attempts
            if last or not _core.should_retry(response, error, idempotent):
                if error is not None:
                    raise error
                return check(response)
            time.sleep(self.retry.wait(attempt, response))
        raise AssertionError("unreachable")

    # -- sampling ---------------------------------------------------------------------------------
    def samples(self, model: str, n: int | None = None, *, seed: int | None = None, mode: str = "plain",
                labels: list | dict | None = None, oversample: int | None = None, threshold: float | None = None,
                truncation: float | None = None, version: int | None = None) -> Samples:
        """Samples of a model as arrays (the npz answer of /samples)."""
        fields = body(n=n, seed=seed, mode=mode, labels=labels, oversample=oversample, threshold=threshold,
                      truncation=truncation, version=version, format="npz")
        return _core.samples_of(self.request("POST", f"/v1/models/{model}/samples", json=fields))

    def dataset(self, model: str, n: int | None = None, **options) -> Samples:
        """A dataset as arrays (npz): options as /v1/datasets takes them (labels, seed, mode, start, order...)."""
        fields = body(model=model, n=n, **options, format="npz")
        return _core.samples_of(self.request("POST", "/v1/datasets", json=fields))

    def iter_dataset(self, model: str, n: int | None = None, *, start: int = 0, retries: int = 5,
                     **options) -> Iterator[shards.Item]:
        """A dataset sample by sample as it streams (WebDataset tar), resumed at the next index after a
        dropped connection, so the samples are exactly those of one unbroken download. Needs Pillow."""
        fields = body(model=model, **options, format="tar")
        end = None if n is None else start + n
        labelled = None
        failures = 0
        while end is None or start < end:
            request = {**fields, "start": start, **({} if end is None else {"n": end - start})}
            try:
                with self.http.stream("POST", "/v1/datasets", json=request) as response:
                    if not response.is_success:
                        response.read()
                        if _core.should_retry(response, None, True) and failures < retries:
                            failures += 1
                            time.sleep(self.retry.wait(failures, response))
                            continue
                        check(response)
                    total = start + int(response.headers["x-count"])
                    end = total if end is None else end
                    if labelled is None:
                        labelled = self.model(model, options.get("version")).labels is not None
                    for item in shards.read(response.iter_bytes(), labelled):
                        yield item
                        start = item.index + 1
                        failures = 0  # progress: the budget is for failures in a row
                if start < end:
                    raise shards.Truncated(f"the stream ended at sample {start} of {end}")
            except (httpx.TransportError, shards.Truncated):
                failures += 1
                if failures > retries:
                    raise
                time.sleep(self.retry.wait(failures - 1, None))

    # -- models -----------------------------------------------------------------------------------
    def models(self) -> list[Model]:
        return [Model.of(m) for m in self.request("GET", "/v1/models").json()["models"]]

    def model(self, name: str, version: int | None = None) -> Model:
        """One model with its card (the default version's, or the version asked for)."""
        params = {} if version is None else {"version": version}
        return Model.of(self.request("GET", f"/v1/models/{name}", params=params).json())

    def limits(self) -> dict:
        return self.request("GET", "/v1/limits").json()

    # -- uploads and jobs -------------------------------------------------------------------------
    def upload(self, data: Any, filename: str | None = None) -> dict:
        """Training data (a path, bytes, or {"x": ..., "y": ...} arrays); the answer's id goes into a job."""
        name, raw = _core.upload_file(data, filename)
        return self.request("POST", "/v1/data", idempotent=False, files={"file": (name, raw)}).json()

    def submit(self, family: str, **fields) -> Job:
        """Submit a training job (steps, data, params, model, seed, promote); answered at once."""
        return Job.of(self.request("POST", "/v1/jobs", idempotent=False, json=body(family=family, **fields)).json())

    def job(self, job_id: str) -> Job:
        return Job.of(self.request("GET", f"/v1/jobs/{job_id}").json())

    def jobs(self, state: str | None = None) -> list[Job]:
        params = {} if state is None else {"state": state}
        return [Job.of(j) for j in self.request("GET", "/v1/jobs", params=params).json()["jobs"]]

    def cancel(self, job_id: str) -> Job:
        return Job.of(self.request("DELETE", f"/v1/jobs/{job_id}", idempotent=False).json())

    def events(self, job_id: str) -> Iterator[Event]:
        """The job's server-sent events (progress, state) until it ends."""
        with self.http.stream("GET", f"/v1/jobs/{job_id}/events", timeout=httpx.Timeout(60, read=None)) as response:
            if not response.is_success:
                response.read()
                check(response)
            parser = EventParser()
            for line in response.iter_lines():
                event = parser.feed(line)
                if event is not None:
                    yield event

    def wait(self, job_id: str, timeout: float | None = None, on_event=None) -> Job:
        """Follow a job's events until it ends (or TimeoutError); its final record."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                for event in self.events(job_id):
                    if on_event is not None:
                        on_event(event)
                    if event.name == "state" and event.data["state"] in _core.FINAL:
                        return self.job(job_id)
                    if deadline is not None and time.monotonic() > deadline:
                        raise TimeoutError(f"job {job_id} still running after {timeout} s")
            except httpx.TransportError:  # a dropped stream: the record says where the job is
                pass
            job = self.job(job_id)
            if job.done:
                return job
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {job.state} after {timeout} s")


__all__ = ["ApiError", "Client"]
