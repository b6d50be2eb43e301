"""export(checkpoint, repository) -> version folder: the family's ONNX graphs plus card.json, verified, atomic.

What a version holds is the family's to say (its `graphs`: G and D for a sampling family, the networks its
card's domains name for a translation family); how it is written, checked and published is this file's.
"""
from __future__ import annotations

import datetime as dt
import importlib.metadata
import logging
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

from service.repository import Card, load, next_version, publish, stage
from service.repository.card import Bar, Gate, Lineage, MeasuredAgainst
from service.repository.store import publish_to_store, write_alias
from service.store.versions import Versions
from training import data
from training import evaluate as evaluation
from training.families import get_family
from training.families.base import Graph
from training.trainer import Checkpoint

log = logging.getLogger(__name__)
OPSET = 17
TOLERANCE = 1e-4


def export(checkpoint: Checkpoint, repository: Path, others: tuple[Path, ...] = (), evaluate: bool = True,
           extra_card: dict | None = None, promote: bool | None = None, job: str | None = None,
           data_name: str | None = None, store: Versions | None = None, owner: str | None = None,
           admin: bool = False) -> Path:
    """Write the family's graphs to a temp folder, verify ORT against torch, evaluate and gate, publish as the
    next version.

    `others` are the repository's other folders: version numbers are merged across all of them. With a `store`
    (the service's versions; `repository` is then its writable folder) the number comes from the store, above
    every shipped one, and the version, its files and its default alias are recorded in one transaction, with
    `owner` (the job's). The new version becomes the model's default (its `default` alias) only if it passes
    its family's gate and `promote` says so; `promote` None means: yes for a new model name, no for an existing
    one. `job` and `data_name` (the data as the user named it, e.g. an upload id) go into the card's lineage.
    """
    name = checkpoint.config.model_name
    folders = [Path(repository), *map(Path, others)]
    if promote is None:
        promote = next_version(name, folders) == 1 and (store is None or store.is_new(name))
    family = get_family(checkpoint.config.family)
    tmp = stage(name, Path(repository))
    try:
        G, D = checkpoint.generator.eval(), checkpoint.discriminator.eval()
        card = _card(checkpoint, family, name, extra_card or {})
        _write_graphs(family.graphs(checkpoint.family_config, G, D), tmp)
        card.lineage = _lineage(checkpoint, tmp, job, data_name)
        card.save(tmp)
        served = load(name, 0, tmp)  # the card checked against the ONNX files, as the service will
        if evaluate:  # measured on the ONNX files exactly as the service will run them
            card.metrics = evaluation.evaluate(served)
            against = evaluation.measured_against(served.card)
            if against is not None:  # the data as the user named it (an upload id), as the lineage has it
                card.measured_against = MeasuredAgainst.model_validate({**against, "data": data_name or against["data"]})
            bars = family.gate(served.card)
            card.gate = Gate.check([Bar(metric=m, op=op, limit=limit) for m, op, limit in bars], card.metrics)
            effect = evaluation.truncation_effect(served)
            if effect is not None:  # the digit families: what ψ does to precision, recall and Fréchet ratio
                card.truncation = effect
        card.promoted = promote and (card.gate is None or card.gate.outcome == "passed")
        if store is not None:
            path = publish_to_store(store, tmp, card, folders[1:], owner, job, admin)
        else:
            path = publish(tmp, card, folders)
            if card.promoted:
                write_alias(name, "default", card.version, folders[0])
        log.info("%s version %s: gate %s; %s", name, card.version, card.gate.summary() if card.gate else "not checked",
                 "now the default" if card.promoted else "the default is unchanged")
        return path
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _write_graphs(graphs: list[Graph], tmp: Path) -> None:
    """Each graph to ONNX, then each checked against torch on its example inputs."""
    for graph in graphs:
        _to_onnx(graph.module, graph.inputs, tmp / graph.file, graph.input_names, graph.output)
    for graph in graphs:
        _verify(graph.module, graph.inputs, tmp / graph.file, graph.input_names)


def _to_onnx(module, inputs, path: Path, input_names, output_name) -> None:
    axes = {n: {0: "n"} for n in input_names} | {output_name: {0: "n"}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, inputs, str(path), input_names=input_names, output_names=[output_name],
                          dynamic_axes=axes, opset_version=OPSET, dynamo=False)


def _verify(module, inputs, path: Path, input_names) -> None:
    """onnxruntime must agree with torch on one batch, or nothing is published."""
    with torch.no_grad():
        expected = module(*inputs).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {n: t.numpy() for n, t in zip(input_names, inputs)})[0]
    if got.shape != expected.shape or not np.allclose(got, expected, atol=TOLERANCE, rtol=TOLERANCE):
        raise RuntimeError(f"{path.name}: onnxruntime disagrees with torch "
                           f"(max |diff| {np.abs(got - expected).max():.2e} > {TOLERANCE})")


def _card(checkpoint: Checkpoint, family, name: str, extra: dict) -> Card:
    cfg = checkpoint.family_config
    card = {
        "name": name,
        "family": checkpoint.config.family,
        "kind": family.KIND,
        "description": family.description,
        "labels": family.labels(cfg),
        **family.card_fields(cfg, checkpoint.config.data),  # latent (or domains), shapes, the family's own keys
        "training": {
            "config": checkpoint.config.to_dict(),
            "family_config": vars(cfg),
            "steps": checkpoint.step,
            "seconds": round(checkpoint.seconds, 1),
            "torch": torch.__version__,
        },
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    card.update(extra)
    return Card.model_validate(card)


def _lineage(checkpoint: Checkpoint, folder: Path, job: str | None, data_name: str | None) -> Lineage:
    """Where this version comes from: job, data (with a hash of what was trained on), code and runtimes."""
    family = get_family(checkpoint.config.family)
    source = checkpoint.config.data
    fingerprint = None if family.SYNTHETIC else data.fingerprint(family.sources(source))
    shape = checkpoint_shape(checkpoint, family)
    split = data.load_split(source, size=shape[1], channels=shape[0]).info if shape else None
    return Lineage(
        job=job, data=data_name or source, data_sha256=fingerprint, split=split,
        project_version=_project_version(), git_commit=_git_commit(), torch=torch.__version__, onnx_opset=OPSET,
        onnx_ir=onnx.load(str(min(folder.glob("*.onnx"))), load_external_data=False).ir_version,
        onnxruntime=ort.__version__, hardware=checkpoint.hardware or None, created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))


def checkpoint_shape(checkpoint: Checkpoint, family) -> tuple[int, ...] | None:
    """An image family's sample shape (c, h, w), whose data is split; None for any other."""
    if family.KIND != "image":
        return None
    return tuple(family.card_fields(checkpoint.family_config, checkpoint.config.data)["sample_shape"])


def _project_version() -> str | None:
    try:
        return importlib.metadata.version("ganserve")
    except importlib.metadata.PackageNotFoundError:
        return None


def _git_commit() -> str | None:
    """The checkout's commit, when the code runs from one (a wheel install has none)."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                             text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None
