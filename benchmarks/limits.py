"""What this machine can do without HTTP: in-process onnxruntime times, FLOPs per image, the matmul rate."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from service.repository import Card, session_options
from service.sampling import latents


def _time(fn, seconds: float) -> float:
    """Median seconds of one call of fn, over about `seconds` of calls (the median resists noise)."""
    fn()
    times, end = [], time.perf_counter() + seconds
    while time.perf_counter() < end or len(times) < 5:
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def in_process(model_dir: Path, batches: list[int], oversample: int = 1, quick: bool = False) -> dict[int, dict]:
    """batch -> median seconds of G, D and G+D calls, best of 1 and 2 intra-op threads (spinning off)."""
    card = Card.load(model_dir)
    dim, dist = card.latent.dim, card.latent.distribution
    conditional = bool(card.labels)
    out: dict[int, dict] = {}
    for threads in (1, 2):
        g = ort.InferenceSession(str(model_dir / "generator.onnx"), session_options(threads),
                                 providers=["CPUExecutionProvider"])
        d = ort.InferenceSession(str(model_dir / "discriminator.onnx"), session_options(threads),
                                 providers=["CPUExecutionProvider"])
        for b in batches:
            g_feed = {"z": latents(0, 0, b, dim, dist)}
            if conditional:
                g_feed["label"] = np.arange(b, dtype=np.int64) % len(card.labels)
            x = g.run(None, g_feed)[0]
            d_feed = {"sample": x, **({"label": g_feed["label"]} if conditional else {})}
            seconds = 0.1 if quick else 0.4
            tg = _time(lambda: g.run(None, g_feed), seconds)
            td = _time(lambda: d.run(None, d_feed), seconds)
            by_threads = {**out.get(b, {}).get("by_threads", {}), threads: tg}
            if b not in out or tg < out[b]["g"]:
                out[b] = {"g": tg, "d": td, "gd": tg + td, "g_threads": threads, "g_p50": tg}
            out[b]["by_threads"] = by_threads
    return out


def default_options_rate(model_dir: Path, batch: int = 64) -> float:
    """G images/s with onnxruntime's default options (a thread per core, spinning), for comparison."""
    card = Card.load(model_dir)
    g = ort.InferenceSession(str(model_dir / "generator.onnx"), providers=["CPUExecutionProvider"])
    feed = {"z": latents(0, 0, batch, card.latent.dim, card.latent.distribution)}
    if card.labels:
        feed["label"] = np.arange(batch, dtype=np.int64) % len(card.labels)
    return batch / _time(lambda: g.run(None, feed), 0.4)


def matmul_rate(threads: int, size: int = 1024) -> float:
    """FLOP/s of onnxruntime's float32 matmul of two size×size matrices: the machine's practical peak."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"])], "mm",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [size, size]),
         helper.make_tensor_value_info("b", TensorProto.FLOAT, [size, size])],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [size, size])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    session = ort.InferenceSession(model.SerializeToString(), session_options(threads),
                                   providers=["CPUExecutionProvider"])
    a = np.random.default_rng(0).standard_normal((size, size)).astype(np.float32)
    return 2 * size**3 / _time(lambda: session.run(None, {"a": a, "b": a}), 1.0)


def generator_flops(path: Path) -> float:
    """Multiply-add FLOPs (×2) of one sample through an ONNX graph: Gemm, MatMul, Conv, ConvTranspose."""
    import onnx
    from onnx import numpy_helper, shape_inference

    model = onnx.load(str(path))
    for tensor in model.graph.input:
        tensor.type.tensor_type.shape.dim[0].dim_value = 1
    model = shape_inference.infer_shapes(model)
    shapes = {}
    for info in [*model.graph.input, *model.graph.value_info, *model.graph.output]:
        shapes[info.name] = [d.dim_value for d in info.type.tensor_type.shape.dim]
    for init in model.graph.initializer:
        shapes[init.name] = list(numpy_helper.to_array(init).shape)
    total = 0.0
    for node in model.graph.node:
        ins = [shapes.get(i) for i in node.input]
        out = shapes.get(node.output[0])
        if out is None or any(s is None for s in ins[:2]):
            continue
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "Gemm":
            k = ins[0][0] if attrs.get("transA") else ins[0][1]
            total += 2 * np.prod(out) * k
        elif node.op_type == "MatMul":
            total += 2 * np.prod(out) * ins[0][-1]
        elif node.op_type == "Conv":
            total += 2 * np.prod(out) * np.prod(ins[1][1:])  # weight (cout, cin/g, kh, kw)
        elif node.op_type == "ConvTranspose":
            total += 2 * np.prod(ins[0]) * np.prod(ins[1][1:])  # weight (cin, cout/g, kh, kw)
    return float(total)


def models(folders: list[Path]) -> list[tuple[str, Path]]:
    """(name, folder of its highest version) of every model in the repository folders."""
    found: dict[str, Path] = {}
    for root in folders:
        for version in sorted(root.glob("*/*/card.json")):
            if version.parent.name.isdigit():
                name = version.parent.parent.name
                if name not in found or int(version.parent.name) > int(found[name].name):
                    found[name] = version.parent
    return sorted(found.items())
