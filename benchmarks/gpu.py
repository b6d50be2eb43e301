"""Hardware benchmark: training steps/s of each image family on the CPU and on the GPU, and serving images/s
on each onnxruntime execution provider at n=1 C=32 and n=64 C=1.

    python benchmarks/gpu.py                                   # every image family, 3 s a measurement
    python benchmarks/gpu.py --families mnist-dcgan --seconds 2 --model mnist-dcgan

Writes benchmarks/gpu.json and benchmarks/gpu.md (a table). Training runs the real trainer (threads chosen as a
job's are, GANSERVE_TRAIN_THREADS unset) for `--seconds` of steps once the threads are chosen (the time spent
choosing them is reported beside). Serving starts `ganserve serve` once per provider (GANSERVE_ORT_PROVIDERS) and
loads it with benchmarks/loadgen.py. Without a GPU (torch sees no CUDA, onnxruntime has no GPU provider) it runs
the CPU half and says so in both files. Not a test: numbers depend on what else runs (the load average is kept).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402

from benchmarks.serving import HOST, Process, load  # noqa: E402
from tests.utils import free_port  # noqa: E402
from training.config import TrainConfig  # noqa: E402
from training.families import FAMILIES  # noqa: E402
from training.trainer import TrainingCancelled, train  # noqa: E402

IMAGE_FAMILIES = [name for name, family in FAMILIES.items() if family.KIND == "image"]
PROVIDERS = ["CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"]
CELLS = [(1, 32), (64, 1)]  # (n images per request, concurrency)
DATA = {"rgb-dcgan": "mnist"}  # families with no offline default data: a built-in source they take


def training_rate(family: str, device: str, seconds: float) -> dict:
    """Steps/s of `seconds` of the family's real training loop on `device`, once its threads are chosen (the
    seconds until they are chosen, data loading and warm-up steps included, are reported apart: on a loaded
    machine one wider step can take seconds)."""
    marks: list[tuple[int, float]] = []
    clock: dict[str, float] = {}

    def on_progress(p) -> None:
        clock["hardware"] = p.hardware  # type: ignore[assignment]
        if p.hardware["threads_chosen"] == "measuring":
            return
        marks.append((p.step, p.seconds))
        clock.setdefault("first", time.perf_counter())

    def should_stop() -> bool:
        return "first" in clock and time.perf_counter() - clock["first"] > seconds

    try:
        train(TrainConfig(family=family, steps=1_000_000, device=device, progress_every=1,
                          data=DATA.get(family, "default")), on_progress, should_stop)
    except TrainingCancelled:
        pass
    (s0, t0), (s1, t1) = marks[0], marks[-1]
    return {"steps_per_s": round((s1 - s0) / (t1 - t0), 2), "steps": s1, "seconds_until_chosen": round(t0, 2),
            "hardware": clock["hardware"]}


def serving_rates(provider: str, model: str, seconds: float, data: Path) -> dict:
    """images/s of `model` in plain mode at each (n, C), on a server asked for `provider` first."""
    port = free_port()
    env = {"GANSERVE_REPOSITORY": f"{data / 'models'}:{ROOT / 'models'}", "GANSERVE_DATA": str(data),
           "GANSERVE_RELOAD_SECONDS": "5", "GANSERVE_RATE_PER_SECOND": "0", "GANSERVE_ORT_PROVIDERS": provider}
    args = [sys.executable, "-m", "ganserve.cli", "serve", "--port", str(port), "--quiet"]
    url = f"http://{HOST}:{port}"
    data.mkdir(parents=True, exist_ok=True)
    server = Process(args, env, f"{url}/readyz", data / f"serve-{provider}.log")
    try:
        view = json.loads(urllib.request.urlopen(f"{url}/v1/models/{model}").read())
        default = next(v for v in view["version_details"] if v["version"] == view["default"])
        ran_on = {network: t["provider"] for network, t in (default["threads"] or {}).items()}
        out = {"ran_on": ran_on}
        for n, c in CELLS:
            result = load(f"{url}/v1/models/{model}/samples", {"n": n, "seed": 1, "format": "npy"}, c, seconds,
                          server, url)
            out[f"n={n} C={c}"] = {"images_per_s": round(result["rps"] * n, 1), "p50_ms": round(result["p50"] * 1e3, 2),
                                  "rows_per_batch": round(result["rows_per_batch"], 1), "errors": result["errors"]}
        return out
    finally:
        server.stop()


def table(results: dict) -> str:
    lines = [f"# Hardware benchmark ({results['when']})", "", results["note"], "",
             f"Machine: {results['cores']} cores, load average {results['load_before']} before, "
             f"torch {results['torch']}, onnxruntime {results['onnxruntime']}; {results['seconds']} s a measurement. "
             f"`{results['command']}`", "", "## Training (steps/s)", "",
             "| family | cpu | threads (how; s until chosen, data loading included) | cuda |", "|---|---|---|---|"]
    for family, by_device in results["training"].items():
        cpu, cuda = by_device.get("cpu", {}), by_device.get("cuda", {})
        hw = cpu.get("hardware", {})
        lines.append(f"| {family} | {cpu.get('steps_per_s', cpu.get('error', '-'))} | "
                     f"{hw.get('threads', '-')} ({hw.get('threads_chosen', '-')}, "
                     f"{cpu.get('seconds_until_chosen', '-')} s) | "
                     f"{cuda.get('steps_per_s', cuda.get('error', 'no GPU'))} |")
    lines += ["", f"## Serving {results['model']} (images/s, plain mode)", "",
              "| provider | runs on | " + " | ".join(f"n={n} C={c}" for n, c in CELLS) + " |",
              "|---|---|" + "---|" * len(CELLS)]
    for provider, out in results["serving"].items():
        cells = [str(out.get(f"n={n} C={c}", {}).get("images_per_s", out.get("error", "-"))) for n, c in CELLS]
        ran = ", ".join(sorted(set(out.get("ran_on", {}).values()))) or "-"
        lines.append(f"| {provider} | {ran} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", nargs="*", default=IMAGE_FAMILIES)
    parser.add_argument("--model", default="mnist-dcgan", help="the shipped model served")
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "gpu")
    args = parser.parse_args()
    os.environ.pop("GANSERVE_TRAIN_THREADS", None)  # threads chosen as a job's are
    gpu = torch.cuda.is_available()
    providers = [p for p in PROVIDERS if p in ort.get_available_providers()]
    devices = ["cpu", "cuda"] if gpu else ["cpu"]
    half = not gpu or providers == ["CPUExecutionProvider"]
    results = {
        "when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "note": ("No GPU here (torch sees no CUDA device; onnxruntime's providers: "
                 f"{', '.join(ort.get_available_providers())}): only the CPU half ran." if half
                 else f"GPU: {torch.cuda.get_device_name(0)}."),
        "command": "python benchmarks/gpu.py " + " ".join(sys.argv[1:]),
        "cores": os.cpu_count(), "load_before": [round(x, 2) for x in os.getloadavg()],
        "torch": torch.__version__, "onnxruntime": ort.__version__, "seconds": args.seconds, "model": args.model,
        "training": {}, "serving": {},
    }
    for family in args.families:
        for device in devices:
            try:
                out = training_rate(family, device, args.seconds)
            except Exception as exc:  # a family whose default data is missing here: said, not fatal
                out = {"error": f"{type(exc).__name__}: {exc}"[:200]}
            results["training"].setdefault(family, {})[device] = out
            print(f"train {family:<12} {device:<4} {out}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for provider in providers:
            results["serving"][provider] = serving_rates(provider, args.model, args.seconds, Path(tmp) / provider)
            print(f"serve {provider:<26} {results['serving'][provider]}", flush=True)
    results["load_after"] = [round(x, 2) for x in os.getloadavg()]
    args.out.with_suffix(".json").write_text(json.dumps(results, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(table(results))
    print(table(results))


if __name__ == "__main__":
    main()
