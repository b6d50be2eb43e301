"""Serving benchmark: ganserve over HTTP against in-process onnxruntime (the limit) and LitServe (a peer).

    python benchmarks/serving.py                       # the shipped mnist-dcgan, 5 s per cell
    python benchmarks/serving.py --seconds 3 --memory-seconds 300 --repository models --model mnist-dcgan

Prints, for n = 1 and 64, concurrency 1, 8 and 32, plain and nice: requests/s, images/s, p50 and
p99 latency, next to in-process onnxruntime images/s at the same batch size and LitServe serving
the same generator.onnx with its own batching; then the issue's ratios and targets, the load
generator's CPU share, the cost of nice against oversample × (G + D), FLOPs per image against this
machine's matmul rate, and the RSS of a server holding every model of the repository under load.
Load goes only to 127.0.0.1, bounded in time. Not a test: numbers depend on what else runs (the
load average is printed with them).
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import limits  # noqa: E402
from tests.conftest import free_port, wait_for  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"


class Process:
    """A server subprocess, its CPU seconds, and its RSS."""

    def __init__(self, args: list[str], env: dict[str, str], ready: str, log: Path):
        self.log = open(log, "w")
        self.popen = subprocess.Popen(args, cwd=ROOT, env={**os.environ, **env}, stdout=self.log,
                                      stderr=subprocess.STDOUT)
        wait_for(ready, timeout=60, process=self.popen)
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
        self.popen.wait(15)
        self.log.close()


def ganserve(repository: str, data: Path) -> tuple[Process, str]:
    port = free_port()
    env = {"GANSERVE_REPOSITORY": repository, "GANSERVE_DATA": str(data), "GANSERVE_RELOAD_SECONDS": "5"}
    args = [sys.executable, "-m", "uvicorn", "service.app:create_app", "--factory", "--host", HOST,
            "--port", str(port), "--log-level", "warning", "--no-access-log"]
    return Process(args, env, f"http://{HOST}:{port}/readyz", data / "ganserve.log"), f"http://{HOST}:{port}"


def litserve(model_dir: Path, data: Path, max_batch: int, timeout: float) -> tuple[Process, str]:
    port = free_port()
    args = [sys.executable, "benchmarks/litserve_peer.py", str(model_dir), str(port), str(max_batch), str(timeout)]
    return (Process(args, {"PYTHONPATH": str(ROOT)}, f"http://{HOST}:{port}/health", data / "litserve.log"),
            f"http://{HOST}:{port}")


def scrape(url: str | None) -> dict[str, float]:
    """Sums and counts of ganserve's histograms, added over their labels ({} for the peer)."""
    if url is None:
        return {}
    totals: dict[str, float] = {}
    for line in urllib.request.urlopen(url + "/metrics").read().decode().splitlines():
        name = line.split("{")[0].split(" ")[0]
        if name.endswith(("_sum", "_count")) and not line.startswith("#"):
            totals[name] = totals.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
    return totals


def load(url: str, body: dict, concurrency: int, seconds: float, server: Process | None = None,
         metrics_url: str | None = None) -> dict:
    """Run the load generator in its own process; add the server's CPU seconds and metrics over the run."""
    cmd = [sys.executable, str(ROOT / "benchmarks/loadgen.py"), url, json.dumps(body), str(concurrency)]
    subprocess.run(cmd + [str(min(1.0, seconds / 4))], check=True, capture_output=True)  # warm-up
    cpu0, m0 = (server.cpu() if server else 0.0), scrape(metrics_url)
    out = json.loads(subprocess.run(cmd + [str(seconds)], check=True, capture_output=True, text=True).stdout)
    out["server_cpu"] = (server.cpu() - cpu0) if server else float("nan")
    m1 = scrape(metrics_url)
    d = {k: m1[k] - m0.get(k, 0.0) for k in m1}
    ratio = lambda a, b: d.get(a, 0.0) / d[b] if d.get(b) else float("nan")
    out["rows_per_batch"] = ratio("ganserve_batch_rows_sum", "ganserve_batch_rows_count")
    out["queue_wait"] = ratio("ganserve_batch_queue_wait_seconds_sum", "ganserve_batch_queue_wait_seconds_count")
    out["in_server"] = ratio("ganserve_sample_latency_seconds_sum", "ganserve_sample_latency_seconds_count")
    out["rps"] = out["requests"] / out["seconds"]
    out["errors"] = sum(v for k, v in out["statuses"].items() if k != "200")
    return out


def fmt_row(label: str, r: dict, n: int, limit_ips: float | None = None) -> str:
    ips = r["rps"] * n
    share = r["cpu"] / (r["cpu"] + r["server_cpu"]) if r["server_cpu"] == r["server_cpu"] else float("nan")
    ratio = f"{ips / limit_ips:6.0%}" if limit_ips else "     -"
    return (f"{label:<34} {r['rps']:8.0f} {ips:9.0f} {r['p50'] * 1e3:8.2f} {r['p99'] * 1e3:8.2f} {ratio} "
            f"{share:6.0%} {r['errors']:5d} {r.get('rows_per_batch', float('nan')):6.1f} "
            f"{r.get('queue_wait', float('nan')) * 1e3:6.2f} {r.get('in_server', float('nan')) * 1e3:7.2f} "
            f"{r['server_cpu'] / max(r['requests'], 1) * 1e6:6.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repository", default="models", help="':'-separated model folders (all are loaded)")
    parser.add_argument("--model", default="mnist-dcgan")
    parser.add_argument("--seconds", type=float, default=5.0, help="per cell")
    parser.add_argument("--oversample", type=int, default=20)
    parser.add_argument("--format", default="npy", help="ganserve's response format (LitServe answers .npy)")
    parser.add_argument("--memory-seconds", type=float, default=30.0, help="RSS run at concurrency 32; 0: skip")
    parser.add_argument("--peer-batch", type=int, default=32, help="LitServe max_batch_size")
    parser.add_argument("--peer-timeout", type=float, default=0.002, help="LitServe batch_timeout, seconds")
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument("--memory-only", action="store_true", help="only the RSS run")
    args = parser.parse_args()
    if args.memory_only:
        memory(args, [Path(p) for p in args.repository.split(":") if p], Path(tempfile.mkdtemp(prefix="ganserve-bench-")))
        return

    folders = [Path(p) for p in args.repository.split(":") if p]
    model_dir = max((p for f in folders for p in (f / args.model).glob("*") if p.name.isdigit()),
                    key=lambda p: int(p.name), default=None)
    if model_dir is None:
        raise SystemExit(f"no model {args.model!r} in {args.repository}")
    print(f"model {args.model} from {model_dir}; load average at start {os.getloadavg()}; cores {os.cpu_count()}")

    # 1. The limit: in-process onnxruntime on the same files, best of 1 and 2 intra-op threads.
    inproc = limits.in_process(model_dir, [1, 8, 32, 64, args.oversample, 64 * args.oversample])
    print("\nin-process onnxruntime (best of 1 and 2 threads; G = generator, D = discriminator)")
    for b, r in sorted(inproc.items()):
        print(f"  batch {b:5d}: G {r['g']*1e3:8.3f} ms ({b / r['g']:8.0f} img/s, best with {r['g_threads']} thread"
              f"{'s' if r['g_threads'] > 1 else ''}; 1 thread {b / r['by_threads'][1]:6.0f}, 2 threads "
              f"{b / r['by_threads'][2]:6.0f} img/s)   G+D {r['gd']*1e3:8.3f} ms")

    print(f"  onnxruntime's default options (a thread per core, spinning): "
          f"{limits.default_options_rate(model_dir):.0f} img/s at batch 64 — ganserve runs 1 thread, no spinning")

    # 2. ganserve and LitServe under the same load generator.
    data = Path(tempfile.mkdtemp(prefix="ganserve-bench-"))
    rows, results = [], {}
    server, url = ganserve(args.repository, data)
    try:
        for n in (1, 64):
            for mode in ("plain", "nice"):
                for c in (1, 8, 32):
                    body = {"n": n, "seed": 1, "mode": mode, "format": args.format, "oversample": args.oversample}
                    r = results[("ganserve", n, mode, c)] = load(f"{url}/v1/models/{args.model}/samples", body, c,
                                                                 args.seconds, server, url)
                    rows.append(fmt_row(f"ganserve n={n} {mode} c={c}", r, n, limit(inproc, n, mode, c, args)))
        for n, c in ((1, 32), (64, 8)):  # the default format, base64 PNGs in JSON: encoding's cost
            body = {"n": n, "seed": 1, "format": "json"}
            r = load(f"{url}/v1/models/{args.model}/samples", body, c, args.seconds, server, url)
            rows.append(fmt_row(f"ganserve n={n} plain c={c} json", r, n, limit(inproc, n, "plain", c, args)))
    finally:
        server.stop()
    if not args.no_peer:
        peer, peer_url = litserve(model_dir, data, args.peer_batch, args.peer_timeout)
        try:
            for n in (1, 64):
                for c in (1, 8, 32):
                    r = results[("litserve", n, "plain", c)] = load(f"{peer_url}/predict", {"n": n, "seed": 1}, c,
                                                                    args.seconds, peer)
                    rows.append(fmt_row(f"litserve n={n} plain c={c}", r, n, limit(inproc, n, "plain", c, args)))
        finally:
            peer.stop()
    print(f"\n{'':<34} {'req/s':>8} {'img/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'limit':>6} {'lg cpu':>6} {'errs':>5} "
          f"{'rows/b':>6} {'wait':>6} {'server':>7} {'cpu µs':>6}")
    print("\n".join(rows))
    print("  limit: images/s as a share of in-process images/s at the batch the load allows (n=64: 64; n=1: c);")
    print("         nice: of in-process G+D over n × oversample candidates per n images")
    print("  lg cpu: the load generator's share of the CPU seconds spent by it and the server together")
    print("  rows/b: rows per onnxruntime call; wait: ms a call queued for its batch; server: ms from route entry")
    print("          to body (the rest of p50 is HTTP and the load generator); cpu µs: server CPU per request")

    # 3. The targets, as ratios measured in this one run.
    print("\ntargets")
    g = results
    best64 = max(g[("ganserve", 64, "plain", c)]["rps"] * 64 for c in (1, 8, 32))
    check("n=64 plain: best img/s / in-process batch 64", best64 / (64 / inproc[64]["g"]), ">=", 0.9)
    for c in (1, 8, 32):
        check(f"  (at c={c})", g[("ganserve", 64, "plain", c)]["rps"] * 64 / (64 / inproc[64]["g"]), ">=", 0.9)
    n1c32 = g[("ganserve", 1, "plain", 32)]["rps"]
    check("n=1 c=32: img/s / in-process batch 32", n1c32 / (32 / inproc[32]["g"]), ">=", 0.6)
    if not args.no_peer:
        check("n=1 c=32: img/s / LitServe img/s", n1c32 / g[("litserve", 1, "plain", 32)]["rps"], ">=", 1.4)
    c1 = g[("ganserve", 1, "plain", 1)]
    check("n=1 c=1: p50 / in-process single-sample p50", c1["p50"] / inproc[1]["g_p50"], "<=", 1.6)
    check("n=1 c=1: p99 / p50", c1["p99"] / c1["p50"], "<=", 2.0)
    for n in (1, 64):
        nice = g[("ganserve", n, "nice", 1)]
        budget = args.oversample * (inproc[n]["g"] + inproc[n]["d"])
        check(f"nice n={n} c=1: p50 / (oversample × (G + D) at batch {n})", nice["p50"] / budget, "<=", 1.1)
        plain = g[("ganserve", n, "plain", 1)]
        extra = (nice["p50"] - plain["p50"]) / (budget - inproc[n]["g"])
        print(f"    nice n={n}: p50 {nice['p50']*1e3:.2f} ms, plain {plain['p50']*1e3:.2f} ms; the difference is "
              f"{extra:.2f} × the in-process cost of the extra work (oversample × (G + D) − G); in-process G+D "
              f"on all {n * args.oversample} candidates at once {inproc[n * args.oversample]['gd']*1e3:.2f} ms")

    # 4. FLOPs against the machine's matmul rate, for every model of the repository.
    print("\nFLOPs per image and the physical limit (single-thread onnxruntime matmul rate)")
    rate1, rate2 = limits.matmul_rate(1), limits.matmul_rate(2)
    print(f"  matmul 1024³ float32: {rate1 / 1e9:.1f} GFLOP/s on 1 thread, {rate2 / 1e9:.1f} GFLOP/s on 2")
    for name, version_dir in limits.models(folders):
        flops = limits.generator_flops(version_dir / "generator.onnx")
        ips = 64 / limits.in_process(version_dir, [64], 1, quick=True)[64]["g"]
        print(f"  {name:<14} G {flops / 1e6:8.2f} MFLOP/image: {ips:9.0f} img/s in-process at batch 64 = "
              f"{ips * flops / 1e9:6.1f} GFLOP/s, {ips * flops / max(rate1, rate2):4.0%} of the matmul rate "
              f"(limit {max(rate1, rate2) / flops:9.0f} img/s)")

    # 5. Memory: every model loaded, concurrency 32, a bounded run.
    if args.memory_seconds > 0:
        memory(args, folders, data)
    print(f"\nload average at end {os.getloadavg()}")


def limit(inproc: dict, n: int, mode: str, c: int, args) -> float:
    """In-process images/s of the same work at the batch the load allows."""
    if mode == "nice":
        return n / inproc[n * args.oversample]["gd"]
    batch = 64 if n == 64 else c
    return batch / inproc[batch]["g"]


def check(label: str, value: float, op: str, target: float) -> None:
    ok = value >= target if op == ">=" else value <= target
    print(f"  {label:<58} {value:7.2f}  (target {op} {target})  {'met' if ok else 'NOT MET'}")


def memory(args, folders: list[Path], data: Path) -> None:
    server, url = ganserve(args.repository, data)
    try:
        names = [name for name, _ in limits.models(folders)]
        for name in names:  # load every model's sessions and warm its pages once
            subprocess.run([sys.executable, "-c", "import httpx,sys; httpx.post(sys.argv[1], json={'n': 16})",
                            f"{url}/v1/models/{name}/samples"], check=True)
        start = server.rss()
        per = [32 // len(names) + (i < 32 % len(names)) for i in range(len(names))]  # 32 connections in all
        cmd = lambda name, c: [sys.executable, str(ROOT / "benchmarks/loadgen.py"), f"{url}/v1/models/{name}/samples",
                               json.dumps({"n": 16, "mode": "nice", "oversample": 4}), str(c),
                               str(args.memory_seconds)]
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
              f"(target: < 400 MB and no growth)")
        marks = [samples[min(len(samples) - 1, round(i * (len(samples) - 1) / 10))] for i in range(11)]
        print("  RSS over the run: " + ", ".join(f"{t:.0f} s {r / 2**20:.0f} MB" for t, r in marks))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
