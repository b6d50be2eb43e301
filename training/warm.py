"""A published version's ONNX weights back in a family's modules, so a run can continue from a shipped model.

The repository ships ONNX only (no torch weights). The exporter names ONNX initializers after the
module's parameters (D's with a "D." prefix from the export wrapper); a Linear the exporter turned
into a MatMul keeps its weight transposed under an onnx:: name, found here by its shape. Parameters
the ONNX graph does not hold (a head used only while training) keep their fresh values.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from training.config import TrainConfig
from training.families.base import OptimizerConfig
from training.trainer import Checkpoint, build

log = logging.getLogger(__name__)


def load_weights(module: torch.nn.Module, path: Path, prefix: str = "") -> list[str]:
    """Copy the ONNX file's initializers into module; returns the parameter names left as they were."""
    weights = {w.name: numpy_helper.to_array(w) for w in onnx.load(str(path)).graph.initializer}
    unnamed = [w for name, w in weights.items() if name.startswith("onnx::")]
    state, missing = module.state_dict(), []
    for key, value in state.items():
        found = weights.get(prefix + key)
        if found is None and value.ndim == 2:  # a Linear exported as MatMul: (in, out), named onnx::
            matches = [w for w in unnamed if w.shape == tuple(value.shape[::-1])]
            found = matches[0].T if len(matches) == 1 else None
        if found is None or tuple(found.shape) != tuple(value.shape):
            missing.append(key)
            continue
        state[key] = torch.from_numpy(np.array(found)).to(value.dtype)  # a copy: the ONNX buffer is read-only
    module.load_state_dict(state)
    return missing


def warm_checkpoint(config: TrainConfig, folder: Path) -> Checkpoint:
    """A step-0 checkpoint whose G (raw and EMA) and D are a published version's, to pass as train(resume=...)."""
    family, cfg, G, D = build(config)
    for module, name, prefix in ((G, "generator", ""), (D, "discriminator", "D.")):
        left = load_weights(module, Path(folder) / f"{name}.onnx", prefix)
        buffers = {k for k, _ in module.named_buffers()}
        if [k for k in left if k not in buffers and not k.startswith("classifier.")]:
            raise ValueError(f"{name}: the ONNX file holds no weights for {left}")
        log.info("%s: warm from %s, fresh: %s", name, folder, left or "none")
    opt_g, opt_d = family.optimizers(cfg, G, D)
    ema = OptimizerConfig.of(cfg).ema > 0
    state = {"G": G.state_dict(), "D": D.state_dict(), "ema": G.state_dict() if ema else None,
             "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(),
             "gen": torch.Generator().manual_seed(config.seed).get_state(),
             "rng": np.random.default_rng(config.seed).bit_generator.state}
    return Checkpoint(config=config, family_config=cfg, generator=G, discriminator=D, step=0, seconds=0.0,
                      state=state)


def continue_version(folder: Path, steps: int, params: dict | None = None, repository: Path = Path("models"),
                     promote: bool = False, checkpoint_path: Path | None = None,
                     from_checkpoint: Path | None = None) -> Path:
    """Continue a published version for `steps` steps with `params` changed (or export a checkpoint of such a
    run again) and publish the next version into `repository`, numbered after every configured folder,
    evaluated and gated as every export is; it becomes the default only with `promote` and a passed gate.
    `ganserve warm` runs it."""
    import warnings

    from service.settings import get_settings
    from training.export import export
    from training.trainer import load, progress_bar, save, train

    folder, repository = Path(folder), Path(repository)
    warnings.simplefilter("ignore")  # the ONNX exporter's deprecation notes
    torch.set_num_threads(1)
    start = json.loads((folder / "card.json").read_text())
    origin = f"{start['name']} version {start.get('version')}"
    if from_checkpoint:
        checkpoint = load(from_checkpoint)
    else:
        config = TrainConfig(family=start["family"], steps=steps, seed=0, threads=1, model=start["name"],
                             params={**start["training"]["config"]["params"], **(params or {})})
        with progress_bar(f"continue {origin}") as on_progress:
            checkpoint = train(config, on_progress=on_progress, resume=warm_checkpoint(config, folder))
        if checkpoint_path:
            save(checkpoint, checkpoint_path)
    lineage = {"warm_start": {"from": origin, "steps_before": start["training"].get("steps"),
                              "steps_after": checkpoint.step, "params": checkpoint.config.params},
               "changes": f"{start.get('changes', '')}; then continued from {origin}'s weights for "
                          f"{checkpoint.step:,} steps with params {json.dumps(checkpoint.config.params)}"}
    others = tuple(f for f in get_settings().repositories if f.resolve() != repository.resolve())
    return export(checkpoint, repository, others=others, extra_card=lineage, promote=promote)
