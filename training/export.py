"""export(checkpoint, repository) -> version folder: ONNX G and D plus card.json, verified, atomic.

A translation family exports the networks its card's domains name (two generators, two discriminators).
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
from service.repository.card import Bar, Gate, Lineage
from service.repository.store import write_alias
from training import data
from training import evaluate as evaluation
from training.families import get_family
from training.trainer import Checkpoint, sample_latent

log = logging.getLogger(__name__)
OPSET = 17
TOLERANCE = 1e-4


class _Scorer(torch.nn.Module):
    """D with the ONNX contract's names: sample [+ label] -> score (n,)."""

    def __init__(self, D):
        super().__init__()
        self.D = D

    def forward(self, *inputs):
        return self.D(*inputs)


def export(checkpoint: Checkpoint, repository: Path, others: tuple[Path, ...] = (), evaluate: bool = True,
           extra_card: dict | None = None, promote: bool | None = None, job: str | None = None,
           data_name: str | None = None) -> Path:
    """Write G and D to a temp folder, verify ORT against torch, evaluate and gate, rename into the next version.

    `others` are the repository's other folders: version numbers are merged across all of them. The
    new version becomes the model's default (its `default` alias) only if it passes its family's gate
    and `promote` says so; `promote` None means: yes for a new model name, no for an existing one.
    `job` and `data_name` (the data as the user named it, e.g. an upload id) go into the card's lineage.
    """
    name = checkpoint.config.model_name
    folders = [Path(repository), *map(Path, others)]
    promote = next_version(name, folders) == 1 if promote is None else promote
    family = get_family(checkpoint.config.family)
    tmp = stage(name, Path(repository))
    try:
        G, D = checkpoint.generator.eval(), checkpoint.discriminator.eval()
        card = _card(checkpoint, family, name, extra_card or {})
        if card.kind == "translation":
            _export_translation(card, family.networks(checkpoint.family_config, G, D), tmp)
        else:
            _export_sampling(family, checkpoint.family_config, G, D, tmp)
        card.lineage = _lineage(checkpoint, tmp, job, data_name)
        card.save(tmp)
        served = load(name, 0, tmp)  # the card checked against the ONNX files, as the service will
        if evaluate:  # measured on the ONNX files exactly as the service will run them
            card.metrics = evaluation.evaluate(served)
            card.gate = Gate.check([Bar(metric=m, op=op, limit=limit) for m, op, limit in family.GATE], card.metrics)
            effect = evaluation.truncation_effect(served)
            if effect is not None:  # digit models: what ψ does to precision, recall and Fréchet ratio
                card.truncation = effect
        card.promoted = promote and (card.gate is None or card.gate.outcome == "passed")
        path = publish(tmp, card, folders)
        if card.promoted:
            write_alias(name, "default", card.version, folders[0])
        log.info("%s version %s: gate %s; %s", name, card.version, card.gate.summary() if card.gate else "not checked",
                 "now the default" if card.promoted else "the default is unchanged")
        return path
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _export_sampling(family, cfg, G, D, tmp: Path) -> None:
    """generator.onnx (z [+ label] -> sample) and discriminator.onnx (sample [+ label] -> score), verified."""
    z = sample_latent(cfg, 4, torch.Generator().manual_seed(0))
    labels = torch.arange(4) % len(family.LABELS) if family.LABELS else None
    g_inputs = (z, labels) if labels is not None else (z,)
    with torch.no_grad():
        sample = G(*g_inputs)
    d_inputs = (sample, labels) if labels is not None else (sample,)
    g_names = ["z", "label"] if labels is not None else ["z"]
    d_names = ["sample", "label"] if labels is not None else ["sample"]
    _to_onnx(G, g_inputs, tmp / "generator.onnx", g_names, "sample")
    # eval() on the wrapper too: the ONNX exporter restores the wrapper's mode afterwards, and a
    # wrapper left in training mode would switch D's dropout back on for the check below.
    scorer = _Scorer(D).eval()
    _to_onnx(scorer, d_inputs, tmp / "discriminator.onnx", d_names, "score")
    _verify(G, g_inputs, tmp / "generator.onnx", g_names)
    _verify(scorer, d_inputs, tmp / "discriminator.onnx", d_names)


def _export_translation(card: Card, networks: dict[str, torch.nn.Module], tmp: Path) -> None:
    """Each file the card's domains name: `image` -> `translated` (generators) or `score` (discriminators), verified."""
    gen = torch.Generator().manual_seed(0)
    for key in ("a", "b"):
        domain = getattr(card.domains, key)
        image = torch.rand(4, *domain.shape, generator=gen) * 2 - 1  # (4, c, h, w) in [-1, 1]
        for file, output in ((domain.generator, "translated"), (domain.discriminator, "score")):
            module = _Scorer(networks[Path(file).stem]).eval()
            _to_onnx(module, (image,), tmp / file, ["image"], output)
            _verify(module, (image,), tmp / file, ["image"])


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
    translation = family.KIND == "translation"  # no latent: its card names its domains, from the data it trained on
    card = {
        "name": name,
        "family": checkpoint.config.family,
        "kind": family.KIND,
        "description": (family.__doc__ or "").strip(),
        "latent": None if translation else {"dim": cfg.latent_dim, "distribution": cfg.latent,
                                            **({"codes": cfg.codes} if getattr(cfg, "codes", 0) else {})},
        "labels": list(family.LABELS) if family.LABELS else None,
        **(family.card(cfg, checkpoint.config.data) if translation else family.card(cfg)),
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
    named = family.sources(source) if hasattr(family, "sources") else source  # a translation family's {a, b}
    return Lineage(
        job=job, data=data_name or source, data_sha256=data.fingerprint(named, family.KIND),
        project_version=_project_version(), git_commit=_git_commit(), torch=torch.__version__, onnx_opset=OPSET,
        onnx_ir=onnx.load(str(min(folder.glob("*.onnx"))), load_external_data=False).ir_version,
        onnxruntime=ort.__version__, created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))


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
