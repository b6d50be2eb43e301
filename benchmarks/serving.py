"""Serving benchmark: ganserve over HTTP beside in-process onnxruntime (the limit) and two peers.

    python benchmarks/serving.py                                   # shipped mnist-dcgan + the keras-dcgan reference
    python benchmarks/serving.py --models mnist-dcgan --seconds 3 --rounds 1 --memory-seconds 0
    python benchmarks/serving.py --memory-only --memory-seconds 300

For each model, one table: ganserve (one process, and `--workers 2`), a plain async FastAPI server
(`plain_peer.py`: inference inline on the event loop, no batching) and LitServe (`litserve_peer.py`,
batching up to 64) serving the same generator.onnx, under the same closed-loop load generator
(`loadgen.py`: n images per request at concurrency C, .npy bodies), next to in-process onnxruntime
at the same batch with its best thread setting. Then the issue's targets as ratios measured in
this one run, the load generator's CPU share, and the RSS of a server holding every shipped model
under load. Models: the shipped ones by name, and `keras-dcgan`, the architecture the mnist-dcgan
card names as its reference, with random weights (`reference.py`), exported here. Load goes only
to 127.0.0.1, bounded in time. Not a test: numbers depend on what else runs (the load average is
printed with them).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks import limits  # noqa: E402
from benchmarks.reference import NAME as REFERENCE, export_reference  # noqa: E402
from service.repository import Card  # noqa: E402
from tests.utils import free_port  # noqa: E402

HOST = "127.0.0.1"
PLAIN_CELLS = [(1, 1), (1, 32), (64, 1), (64, 32)]  # (n, concurrency): the four workloads
NICE_CELLS = [(1, 1), (64, 1)]


class Process:
    """A server subprocess (with its children: uvicorn's workers), its CPU seconds and its RSS."""

    def __init__(self, args: list[str], env: dict[str, str], ready: str, log: Path):
        self.log = open(log, "w")
        self.popen = subprocess.Popen(args, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), **env},
                                      stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while not _answers(ready):
            if self.popen.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{args} did not answer {ready}; see {log}")
            time.sleep(0.2)
        self.ps = psutil.Process(self.popen.pid)

    def tree(self) -> list[psutil.Process]:
        return [self.ps, *self.ps.children(recursive=True)]

    def cpu(self) -> float:
        return sum(sum(p.cpu_times()[:2]) for p in self.tree())

    def rss(self) -> int:
        return sum(p.memory_info().rss for p in self.tree())

    def stop(self) -> None:
        for p in reversed(self.tree()):
            try:
                p.terminate()
            except psutil.NoSuchProcess:
                pass
        self.popen.wait(30)
        self.log.close()


def _answers(url: str) -> bool:
    try:
        return urllib.request.urlopen(url, timeout=2).status == 200
    except OSError:
        return False


def ganserve(repository: str, data: Path, workers: int = 1) -> tuple[Process, str]:
    port = free_port()
    # The models as a read-only folder behind a writable one of the server's own (the store's), as deployed.
    env = {"GANSERVE_REPOSITORY": f"{data / 'models'}:{repository}", "GANSERVE_DATA": str(data),
           "GANSERVE_RELOAD_SECONDS": "5",
           "GANSERVE_RATE_PER_SECOND": "0"}
    args = [sys.executable, "-m", "ganserve.cli", "serve", "--port", str(port), "--workers", str(workers),
            "--quiet"]
    ready = f"http://{HOST}:{port}/readyz"
    return Process(args, env, ready, data / f"ganserve-{workers}.log"), f"http://{HOST}:{port}"


def peer(script: str, model_dir: Path, data: Path, *extra: str) -> tuple[Process, str]:
    port = free_port()
    args = [sys.executable, f"benchmarks/{script}", str(model_dir), str(port), *extra]
    return Process(args, {}, f"http://{HOST}:{port}/health", data / f"{script}.log"), f"http://{HOST}:{port}"


def scrape(url: str | None) -> dict[str, float]:
    """Sums and counts of ganserve's histograms, added over their labels ({} for a peer)."""
    if url is None:
        return {}
    totals: dict[str, float] = {}
    for line in urllib.request.urlopen(url + "/metrics").read().decode().splitlines():
        name = line.split("{")[0].split(" ")[0]
        if name.endswith(("_sum", "_count")) and not line.startswith("#"):
            totals[name] = totals.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
    return totals


def load(url: str, body: dict, concurrency: int, seconds: float, server: Process, metrics_url: str | None) -> dict:
    """Run the load generator in its own process; add the server's CPU seconds and metrics over the run."""
    cmd = [sys.executable, str(ROOT / "benchmarks/loadgen.py"), url, json.dumps(body), str(concurrency)]
    subprocess.run(cmd + [str(min(1.0, seconds / 4))], check=True, capture_output=True)  # warm-up
    cpu0, m0 = server.cpu(), scrape(metrics_url)
    out = json.loads(subprocess.run(cmd + [str(seconds)], check=True, capture_output=True, text=True).stdout)
    out["server_cpu"] = server.cpu() - cpu0
    m1 = scrape(metrics_url)
    d = {k: m1[k] - m0.get(k, 0.0) for k in m1}
    ratio = lambda a, b: d.get(a, 0.0) / d[b] if d.get(b) else float("nan")  # noqa: E731
    out["rows_per_batch"] = ratio("ganserve_batch_rows_sum", "ganserve_batch_rows_count")
    out["in_server"] = ratio("ganserve_sample_latency_seconds_sum", "ganserve_sample_latency_seconds_count")
    out["rps"] = out["requests"] / out["seconds"]
    out["errors"] = sum(v for k, v in out["statuses"].items() if k != "200")
    out["lg_share"] = out["cpu"] / max(out["cpu"] + out["server_cpu"], 1e-9)
    return out


def median(runs: list[dict]) -> dict:
    """The run with the median images/s (whole runs, so a row's columns stay consistent); of two, the slower."""
    return sorted(runs, key=lambda r: r["rps"])[(len(runs) - 1) // 2]


def bench_model(name: str, model_dir: Path, repository: str, args, data: Path) -> dict:
    """Every server on one model, `rounds` times in rotation; returns {(server, mode, n, c): result}."""
    runs: dict[tuple, list[dict]] = {}
    servers = [("ganserve", lambda: ganserve(repository, data)),
               ("ganserve ×2", lambda: ganserve(repository, data, workers=2)),
               ("plain FastAPI", lambda: peer("plain_peer.py", model_dir, data)),
               ("LitServe", lambda: peer("litserve_peer.py", model_dir, data, "64", "0.002"))]
    servers = [s for s in servers if s[0] not in args.skip]
    for round_ in range(args.rounds):
        for label, start in servers:
            server, url = start()
            try:
                ours = label.startswith("ganserve")
                if ours:  # what the server measured at load: threads per network, ms per call by rows
                    version = json.loads(urllib.request.urlopen(f"{url}/v1/models/{name}").read())["version_details"]
                    for network, t in (version[-1]["threads"] or {}).items():
                        print(f"  round {round_ + 1} {label:<14} {network}: threads {t['threads']} from "
                              f"{t['wide_from_rows']} rows; ms (1 thread, {os.cpu_count()}) by rows "
                              f"{t['ms_by_rows']}", flush=True)
                cells = [("plain", n, c) for n, c in PLAIN_CELLS]
                if label == "ganserve":
                    cells += [("nice", n, c) for n, c in NICE_CELLS]
                for mode, n, c in cells:
                    body = {"n": n, "seed": 1}
                    if ours:
                        body.update(format="npy", mode=mode, oversample=args.oversample)
                    target = f"{url}/v1/models/{name}/samples" if ours else f"{url}/predict"
                    result = load(target, body, c, args.seconds, server, url if ours else None)
                    runs.setdefault((label, mode, n, c), []).append(result)
                    print(f"  round {round_ + 1} {label:<14} {mode:<5} n={n:<3} c={c:<3} {result['rps'] * n:9.0f} img/s "
                          f"p50 {result['p50'] * 1e3:7.2f} ms  errors {result['errors']}", flush=True)
            finally:
                server.stop()
    return {key: median(values) for key, values in runs.items()}


def table(name: str, results: dict, inproc: dict, args) -> list[tuple[str, float, str, float]]:
    """Print one model's table; return its targets as (label, value, op, target)."""
    peers = ("plain FastAPI", "LitServe")
    print(f"\n{name}: images/s (p50 ms), ratios to the best peer and to in-process onnxruntime at the same batch")
    print(f"  {'cell':<18}" + "".join(f"{s:>22}" for s in ("ganserve", "ganserve ×2", *peers))
          + f"{'in-process':>12}{'÷ best peer':>12}{'÷ in-proc':>10}{'lg cpu':>8}{'rows/b':>7}")
    for mode, n, c in [("plain", n, c) for n, c in PLAIN_CELLS] + [("nice", n, c) for n, c in NICE_CELLS]:
        row = f"  {mode} n={n} c={c}".ljust(20)
        for server in ("ganserve", "ganserve ×2", *peers):
            r = results.get((server, mode, n, c))
            row += f"{r['rps'] * n:>12.0f} ({r['p50'] * 1e3:6.2f})" if r else f"{'–':>22}"
        ours = results[("ganserve", mode, n, c)]
        limit = in_process_rate(inproc, mode, n, c, args)
        best = max((results[(p, mode, n, c)]["rps"] for p in peers if (p, mode, n, c) in results), default=None)
        row += f"{limit:>12.0f}" + (f"{ours['rps'] / best:>12.2f}" if best else f"{'–':>12}")
        row += f"{ours['rps'] * n / limit:>10.2f}{ours['lg_share']:>8.0%}{ours['rows_per_batch']:>7.1f}"
        print(row)
    g = lambda mode, n, c, server="ganserve": results.get((server, mode, n, c))  # noqa: E731
    targets = []
    if g("plain", 64, 1, "plain FastAPI"):
        targets.append((f"{name} n=64 c=1: img/s ÷ plain FastAPI", g("plain", 64, 1)["rps"]
                        / g("plain", 64, 1, "plain FastAPI")["rps"], ">=", 0.95))
    targets.append((f"{name} n=64 c=1: img/s ÷ in-process batch 64 (best threads)",
                    g("plain", 64, 1)["rps"] * 64 / in_process_rate(inproc, "plain", 64, 1, args), ">=", 0.9))
    if g("plain", 1, 32, "plain FastAPI"):  # one process, as the plain server is
        targets.append((f"{name} n=1 c=32: req/s ÷ plain FastAPI (one process)",
                        g("plain", 1, 32)["rps"] / g("plain", 1, 32, "plain FastAPI")["rps"], ">=", 1.3))
    if g("plain", 1, 32, "LitServe"):
        best_ours = max(g("plain", 1, 32)["rps"], (g("plain", 1, 32, "ganserve ×2") or {"rps": 0})["rps"])
        targets.append((f"{name} n=1 c=32: req/s ÷ LitServe (best of 1 and 2 processes)",
                        best_ours / g("plain", 1, 32, "LitServe")["rps"], ">=", 2.0))
    if g("plain", 1, 1, "plain FastAPI"):
        targets.append((f"{name} n=1 c=1: p50 ÷ plain FastAPI p50", g("plain", 1, 1)["p50"]
                        / g("plain", 1, 1, "plain FastAPI")["p50"], "<=", 1.3))
    nice = g("nice", 64, 1)
    targets.append((f"{name} nice n=64 c=1: p50 ÷ in-process G+D of its {64 * args.oversample} candidates",
                    nice["p50"] / inproc[64 * args.oversample]["gd"], "<=", 1.1))
    return targets


def in_process_rate(inproc: dict, mode: str, n: int, c: int, args) -> float:
    """In-process images/s of the same work at the batch the load allows (n=1: c rows at once)."""
    if mode == "nice":
        return n / inproc[n * args.oversample]["gd"]
    batch = n if n > 1 else c
    return batch / inproc[batch]["g"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default=f"mnist-dcgan,{REFERENCE}",
                        help=f"comma-separated: shipped model names, and {REFERENCE} (exported here)")
    parser.add_argument("--repository", default="models", help="where the shipped models are")
    parser.add_argument("--seconds", type=float, default=5.0, help="per cell")
    parser.add_argument("--rounds", type=int, default=2, help="rotations over the servers; the median run is shown "
                        "(of two, the slower)")
    parser.add_argument("--oversample", type=int, default=20, help="nice's candidates per image")
    parser.add_argument("--skip", default="", help="comma-separated servers to leave out, e.g. 'LitServe'")
    parser.add_argument("--memory-seconds", type=float, default=300.0, help="RSS run at concurrency 32; 0: skip")
    parser.add_argument("--memory-only", action="store_true", help="only the RSS run")
    args = parser.parse_args()
    args.skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    data = Path(tempfile.mkdtemp(prefix="ganserve-bench-"))
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load average at start "
          f"{tuple(round(x, 2) for x in os.getloadavg())}; cores {os.cpu_count()}")
    if args.memory_only:
        memory(args, data)
        return

    targets = []
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        if name == REFERENCE:
            repository = str(data / "reference")
            model_dir = export_reference(Path(repository))
        else:
            repository = args.repository
            model_dir = max((p for p in (Path(args.repository) / name).glob("*") if p.name.isdigit()),
                            key=lambda p: int(p.name))
        flops = limits.generator_flops(model_dir / "generator.onnx")
        inproc = limits.in_process(model_dir, sorted({1, 32, 64, args.oversample, 64 * args.oversample}))
        print(f"\n{name} ({model_dir}, G {flops / 1e6:.1f} MFLOP/image); in-process onnxruntime, best of 1 and "
              f"{os.cpu_count()} threads:")
        for b, r in sorted(inproc.items()):
            print(f"  batch {b:5d}: G {b / r['g']:8.0f} img/s ({r['g_threads']} thread{'s' * (r['g_threads'] > 1)}; "
                  + ", ".join(f"{t}: {b / s:.0f}" for t, s in sorted(r["by_threads"].items()))
                  + f")   G+D {r['gd'] * 1e3:8.2f} ms")
        results = bench_model(name, model_dir, repository, args, data)
        targets += table(name, results, inproc, args)

    print("\n  lg cpu: the load generator's share of the CPU seconds it and ganserve spent together;")
    print("  rows/b: rows per onnxruntime call in ganserve; ganserve ×2: `ganserve serve --workers 2`")
    print("\ntargets")
    for label, value, op, target in targets:
        ok = value >= target if op == ">=" else value <= target
        print(f"  {label:<72} {value:6.2f}  (target {op} {target})  {'met' if ok else 'NOT MET'}")
    if args.memory_seconds > 0:
        memory(args, data)
    print(f"\nload average at end {tuple(round(x, 2) for x in os.getloadavg())}")


def memory(args, data: Path) -> None:
    """RSS of one server holding every shipped model, 32 connections of nice n=16 spread over them."""
    server, url = ganserve(args.repository, data)
    try:
        names = [name for name, _ in limits.models([Path(args.repository)])
                 if Card.load(_).kind != "translation"]
        for name in names:  # load every model's sessions and warm its pages once
            urllib.request.urlopen(urllib.request.Request(f"{url}/v1/models/{name}/samples", method="POST",
                                   data=b'{"n": 16}', headers={"content-type": "application/json"})).read()
        start = server.rss()
        per = [32 // len(names) + (i < 32 % len(names)) for i in range(len(names))]  # 32 connections in all
        cmd = lambda name, c: [sys.executable, str(ROOT / "benchmarks/loadgen.py"),  # noqa: E731
                               f"{url}/v1/models/{name}/samples",
                               json.dumps({"n": 16, "mode": "nice", "oversample": 4}), str(c), str(args.memory_seconds)]
        loads = [subprocess.Popen(cmd(name, c), stdout=subprocess.PIPE, text=True) for name, c in zip(names, per) if c]
        samples, t0 = [], time.monotonic()
        while any(p.poll() is None for p in loads):
            samples.append((time.monotonic() - t0, server.rss()))
            time.sleep(min(5.0, args.memory_seconds / 20))
        done = [json.loads(p.stdout.read()) for p in loads]
        rss = np.array([r for _, r in samples]) / 2**20
        settled = rss[len(rss) // 5:] if len(rss) >= 5 else rss
        print(f"\nmemory: {len(names)} models ({', '.join(names)}), {sum(per)} connections, "
              f"{args.memory_seconds:.0f} s, {sum(d['requests'] for d in done)} requests, "
              f"{sum(sum(v for k, v in d['statuses'].items() if k != '200') for d in done)} errors")
        print(f"  RSS loaded {start / 2**20:.0f} MB; under load min {rss.min():.0f}, max {rss.max():.0f}, "
              f"end {rss[-1]:.0f} MB; growth after the first fifth {settled[-1] - settled[0]:+.1f} MB "
              f"(target: < 400 MB and flat)")
        marks = [samples[min(len(samples) - 1, round(i * (len(samples) - 1) / 10))] for i in range(11)]
        print("  RSS over the run: " + ", ".join(f"{t:.0f} s {r / 2**20:.0f} MB" for t, r in marks))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
