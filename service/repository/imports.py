"""A GAN made elsewhere, read into the repository's contract: its generator's graph and a probe run give the card.

What the graph says is read from it: the latent input and its width (a (n, d) input, or DCGAN's (n, d, 1, 1)),
a label input (integers (n,) or (n, 1)) and the label count (the embedding table or one-hot depth it feeds),
the sample's shape (NCHW, or NHWC transposed). What only a run shows is probed: the value range (tanh's [-1, 1],
sigmoid's [0, 1], or [0, 255]). What neither can tell is asked: the latent distribution. The graphs are
rewritten to the contract's names (z [+ label] -> sample; sample [+ label] -> score (n,), a logit: a final
sigmoid is dropped), and the card is checked against them as the repository checks every version at load.
`ganserve import` and POST /v1/models/{name}/versions are thin wrappers around `inspect` and `write`.
"""
from __future__ import annotations

import hashlib
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from service.repository.card import Card, CardError

FLOATS = (TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE)
INTEGERS = (TensorProto.INT64, TensorProto.INT32)
RANGES = ((0.0, 1.0), (-1.0, 1.0), (0.0, 255.0))  # sigmoid, tanh, pixels: the tightest that holds the probe
PROBE = 64  # latents in the probe run


class ImportError_(ValueError):
    """A graph that cannot be served as a generator (or discriminator); the message names what and why."""


@dataclass
class Imported:
    """What `inspect` made: the card, the rewritten graphs, and where each card field came from."""
    card: Card
    generator: bytes
    discriminator: bytes | None = None
    found: dict = field(default_factory=dict)


def _dims(value_info) -> list:
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
            for d in value_info.type.tensor_type.shape.dim]


def _inputs(model: onnx.ModelProto) -> list:
    initializers = {i.name for i in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in initializers]


def _rename(graph, old: str, new: str) -> None:
    """Every use of a value's name in the graph's nodes, inputs and outputs."""
    for node in graph.node:
        node.input[:] = [new if n == old else n for n in node.input]
        node.output[:] = [new if n == old else n for n in node.output]
    for value in list(graph.input) + list(graph.output) + list(graph.value_info):
        if value.name == old:
            value.name = new


def _fresh(graph, stem: str) -> str:
    names = {n for node in graph.node for n in [*node.input, *node.output]} | {i.name for i in graph.input}
    k = 0
    while f"{stem}_{k}" in names:
        k += 1
    return f"{stem}_{k}"


def _label_count(graph, label: str) -> int | None:
    """Rows of the embedding table (Gather) or the depth of the OneHot the label feeds, following casts."""
    feeds, frontier = {label}, [label]
    consts = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute:
            consts[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    while frontier:
        name = frontier.pop()
        for node in graph.node:
            if name not in node.input:
                continue
            if node.op_type in ("Cast", "Unsqueeze", "Squeeze", "Reshape", "Flatten") and node.input[0] == name:
                feeds.add(node.output[0])
                frontier.append(node.output[0])
            elif node.op_type == "Gather" and node.input[1] == name and node.input[0] in consts:
                return int(consts[node.input[0]].shape[0])
            elif node.op_type == "OneHot" and node.input[0] == name and node.input[1] in consts:
                return int(np.asarray(consts[node.input[1]]).reshape(-1)[0])
    return None


def _generator(model: onnx.ModelProto, labels: int | None) -> tuple[onnx.ModelProto, dict]:
    """The generator rewritten to z [+ label] -> sample, and what was read from its graph."""
    graph, found = model.graph, {}
    latent = label = None
    for value in _inputs(model):
        kind, dims = value.type.tensor_type.elem_type, _dims(value)
        if kind in FLOATS and (len(dims) == 2 or (len(dims) == 4 and dims[2:] == [1, 1])) and latent is None:
            latent = value
        elif kind in INTEGERS and (len(dims) == 1 or (len(dims) == 2 and dims[1] == 1)) and label is None:
            label = value
        else:
            raise ImportError_(f"generator: input {value.name!r} ({dims}) is neither a latent (n, d) nor a label (n,)")
    if latent is None:
        raise ImportError_("generator: no latent input (a float input of shape (n, d) or (n, d, 1, 1))")
    width = _dims(latent)[1]
    if not isinstance(width, int) or width < 1:
        raise ImportError_(f"generator: the latent input {latent.name!r} has no fixed width ({_dims(latent)})")
    found["latent.dim"] = f"graph: input {latent.name!r} {_dims(latent)}"
    if latent.type.tensor_type.elem_type != TensorProto.FLOAT:
        raise ImportError_(f"generator: the latent input {latent.name!r} must be float32")
    # z (n, d): a reshape in front of a (n, d, 1, 1) input, as DCGAN's generators take it.
    inner = _fresh(graph, "z_in") if len(_dims(latent)) == 4 else None
    _rename(graph, latent.name, inner or "z")
    if inner:
        shape = _fresh(graph, "z_shape")
        graph.initializer.append(numpy_helper.from_array(np.array([-1, width, 1, 1], np.int64), shape))
        graph.node.insert(0, helper.make_node("Reshape", ["z", shape], [inner]))
        graph.input.remove(next(i for i in graph.input if i.name == inner))
        graph.input.insert(0, helper.make_tensor_value_info("z", TensorProto.FLOAT, ["n", width]))
    count = None
    if label is not None:
        count = _label_count(graph, label.name)
        found["labels"] = f"graph: input {label.name!r}, {count} rows in the table it indexes" if count else ""
        count = count or labels
        if count is None:
            raise ImportError_(f"labels: the generator takes a label ({label.name!r}) but its graph does not say how "
                               "many; give the label count or names")
        _to_label(graph, label)
    elif labels:
        raise ImportError_("labels: given, but the generator takes no label input")
    _output(graph, "sample", model)
    return model, {**found, "label_count": count}


def _to_label(graph, label) -> None:
    """The label input as the contract's label (n,) int64, cast and reshaped to what the graph took."""
    dims, kind = _dims(label), label.type.tensor_type.elem_type
    inner = _fresh(graph, "label_in")
    _rename(graph, label.name, inner)
    graph.input.remove(next(i for i in graph.input if i.name == inner))
    graph.input.append(helper.make_tensor_value_info("label", TensorProto.INT64, ["n"]))
    steps = []  # (op, extra inputs, attributes) from label to inner
    if len(dims) == 2:
        axes = _fresh(graph, "label_axes")
        graph.initializer.append(numpy_helper.from_array(np.array([1], np.int64), axes))
        steps.append(("Unsqueeze", [axes], {}))
    if kind != TensorProto.INT64:
        steps.append(("Cast", [], {"to": kind}))
    steps = steps or [("Identity", [], {})]
    current = "label"
    for i, (op, extra, attributes) in enumerate(steps):
        out = inner if i == len(steps) - 1 else _fresh(graph, "label_step")
        graph.node.insert(i, helper.make_node(op, [current, *extra], [out], **attributes))
        current = out


def _output(graph, name: str, model) -> None:
    """The graph's one output renamed `name` (its first, if several: the rest are dropped)."""
    if not graph.output:
        raise ImportError_(f"{name}: the graph has no output")
    while len(graph.output) > 1:
        graph.output.pop()
    _rename(graph, graph.output[0].name, name)


def _nhwc(model: onnx.ModelProto, shape: tuple[int, ...]) -> bool:
    """An image output laid out (n, h, w, c), c 1 or 3, rather than (n, c, h, w): transposed."""
    if len(shape) != 3 or shape[-1] not in (1, 3) or shape[0] in (1, 3):
        return False
    graph = model.graph
    inner = _fresh(graph, "sample_nhwc")
    _rename(graph, "sample", inner)
    graph.node.append(helper.make_node("Transpose", [inner], ["sample"], perm=[0, 3, 1, 2]))
    graph.output[0].name = "sample"
    graph.output[0].type.tensor_type.ClearField("shape")
    return True


def _discriminator(model: onnx.ModelProto, conditional: bool) -> tuple[onnx.ModelProto, dict]:
    """The discriminator rewritten to sample [+ label] -> score (n,), a logit (a final sigmoid dropped)."""
    graph, found = model.graph, {}
    images = [i for i in _inputs(model) if i.type.tensor_type.elem_type in FLOATS]
    ints = [i for i in _inputs(model) if i.type.tensor_type.elem_type in INTEGERS]
    if len(images) != 1 or len(ints) != int(conditional):
        raise ImportError_(f"discriminator: expected one image input{' and one label' if conditional else ''}, got "
                           f"{[i.name for i in _inputs(model)]}")
    _rename(graph, images[0].name, "sample")
    if conditional:
        _to_label(graph, ints[0])
    _output(graph, "score", model)
    last = next((n for n in graph.node if "score" in n.output), None)
    score = "score"
    if last is not None and last.op_type == "Sigmoid":  # a probability: its input is the logit
        graph.node.remove(last)
        score = last.input[0]
        found["score"] = "graph: the final sigmoid dropped, its input is the logit"
    flat = _fresh(graph, "score_shape")
    graph.initializer.append(numpy_helper.from_array(np.array([-1], np.int64), flat))
    if score == "score":
        inner = _fresh(graph, "score_in")
        _rename(graph, "score", inner)
        score = inner
    graph.node.append(helper.make_node("Reshape", [score, flat], ["score"]))
    graph.output[0].name = "score"
    graph.output[0].type.tensor_type.ClearField("shape")
    return model, found


def _session(model: onnx.ModelProto) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def _probe(session, width: int, count: int | None, distribution: str) -> np.ndarray:
    rng = np.random.default_rng(0)
    z = (rng.standard_normal((PROBE, width)) if distribution == "normal"
         else rng.uniform(-1, 1, (PROBE, width))).astype(np.float32)
    feed = {"z": z} | ({"label": (np.arange(PROBE) % count).astype(np.int64)} if count else {})
    try:
        return session.run(["sample"], feed)[0]
    except Exception as exc:
        raise ImportError_(f"generator: the probe run failed ({type(exc).__name__}: {str(exc)[:200]})") from None


def value_range(samples: np.ndarray) -> tuple[float, float]:
    """The tightest of sigmoid's, tanh's or pixels' ranges that holds every probed value."""
    low, high = float(samples.min()), float(samples.max())
    for lo, hi in RANGES:
        if low >= lo - 1e-3 and high <= hi + 1e-3:
            return lo, hi
    raise ImportError_(f"value_range: the probe gave values in [{low:.3g}, {high:.3g}], none of "
                       f"{[list(r) for r in RANGES]}")


def inspect(generator: bytes | Path, name: str, latent: str, labels: list[str] | int | None = None,
            discriminator: bytes | Path | None = None, description: str = "") -> Imported:
    """A card for a generator (and discriminator) made elsewhere, read from their graphs and a probe run.

    `latent` ("normal" or "uniform") cannot be read from a graph and must be given; `labels` (names, or a count)
    only where the graph does not say how many labels it takes. ImportError_ (a ValueError) names what is wrong.
    """
    if latent not in ("normal", "uniform"):
        raise ImportError_(f"latent: the distribution the generator was trained on, normal or uniform; got {latent!r}")
    raw = generator.read_bytes() if isinstance(generator, Path) else generator
    try:
        g_model = onnx.load_model_from_string(raw)
    except Exception as exc:
        raise ImportError_(f"generator: not an ONNX model ({type(exc).__name__})") from None
    given = len(labels) if isinstance(labels, list) else labels
    g_model, found = _generator(g_model, given)
    count = found.pop("label_count")
    if isinstance(labels, list) and count != len(labels):
        raise ImportError_(f"labels: {len(labels)} names given, the generator's graph takes {count} labels")
    width = int(_dims(next(i for i in g_model.graph.input if i.name == "z"))[1])
    samples = _probe(_session(g_model), width, count, latent)
    shape = tuple(int(d) for d in samples.shape[1:])
    if _nhwc(g_model, shape):
        found["sample_shape"] = "probe: (h, w, c) output, transposed to (c, h, w)"
        samples, shape = samples.transpose(0, 3, 1, 2), (shape[2], shape[0], shape[1])
    else:
        found["sample_shape"] = f"probe: output {list(shape)}"
    if len(shape) != 3 or shape[0] not in (1, 3):
        raise ImportError_(f"sample_shape: the generator gives {list(shape)}; images (c, h, w) with c 1 or 3 are "
                           "served")
    low, high = value_range(samples)
    found["value_range"] = f"probe: {PROBE} samples in [{samples.min():.3g}, {samples.max():.3g}]"
    found["latent.distribution"] = "given"
    d_bytes = None
    if discriminator is not None:
        d_raw = discriminator.read_bytes() if isinstance(discriminator, Path) else discriminator
        d_model, d_found = _discriminator(onnx.load_model_from_string(d_raw), count is not None)
        found.update(d_found)
        d_bytes = d_model.SerializeToString()
    names = labels if isinstance(labels, list) else ([str(i) for i in range(count)] if count else None)
    card = Card.model_validate({
        "name": name, "family": "imported", "kind": "image", "description": description,
        "latent": {"dim": width, "distribution": latent}, "sample_shape": list(shape), "labels": names,
        "value_range": [low, high], "imported": {"generator_sha256": hashlib.sha256(raw).hexdigest(), "found": found},
    })
    imported = Imported(card, g_model.SerializeToString(), d_bytes, found)
    check(imported)
    return imported


def write(imported: Imported, folder: Path) -> Path:
    """generator.onnx (discriminator.onnx) and card.json into a folder (a staged version's)."""
    folder = Path(folder)
    (folder / "generator.onnx").write_bytes(imported.generator)
    if imported.discriminator is not None:
        (folder / "discriminator.onnx").write_bytes(imported.discriminator)
    imported.card.save(folder)
    return folder


def check(imported: Imported) -> None:
    """The card loaded against its graphs exactly as the repository loads a version; ImportError_ if it fails."""
    from service.repository.store import load

    with tempfile.TemporaryDirectory() as tmp:
        try:
            load(imported.card.name, 1, write(imported, Path(tmp)))
        except CardError as exc:
            raise ImportError_(f"the imported model does not load: {exc}") from None


def publish(imported: Imported, store, writable: Path, shipped: list[Path], promote: bool, owner: str | None = None,
            admin: bool = True) -> Path:
    """An imported model published as a new version through the store, as a job publishes: numbered above every
    shipped version of the name, the default if `promote` (no gate: nothing measured it here), whole or not at
    all. `owner`: the key that imported it (None: the operator)."""
    from service.repository.store import publish_to_store, stage

    tmp = stage(imported.card.name, writable)
    try:
        imported.card.promoted = promote
        write(imported, tmp)
        return publish_to_store(store, tmp, imported.card, shipped, owner, admin=admin)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
