"""Rankings for `nice`, measured on evaluator A only (the protocol in training/evaluate.py).

Each lever picks n of the same candidates (the nice layout: slot i's candidates are latents
i·k … i·k + k − 1 of the seed), so levers differ only in how they choose. Seeds other than the
evaluation seed 1234; B is not measured here.

    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.nice_levers mnist-dcgan [seeds...]
    (or a version folder instead of a model name)
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from service.repository import Card, Repository, load, session_options
from service.sampling import plans
from service.sampling.latents import bits, latent_codes, latents, uniforms
from training import evaluate

ROOT = Path(__file__).resolve().parents[1]
KEYS = ("precision", "recall", "mean_confidence", "frechet_ratio", "label_accuracy", "min_class_share",
        "max_class_share")


def candidates(model, n: int, seed: int, k: int) -> dict:
    """The nice layout's candidates, their logits, their groups (label or cluster) and slot groups."""
    latent = model.card.latent
    labels = None if model.labels is None else np.arange(n, dtype=np.int64) % len(model.labels)
    cand_labels = None if labels is None else np.repeat(labels, k)
    z = latents(seed, 0, n * k, latent.dim, latent.distribution)
    values = plans.run(plans.generate(model, z, cand_labels))
    logits = plans.run(plans.score(model, values, cand_labels)).astype(np.float64)
    scores = {"d": logits}
    if labels is not None:
        groups, slots = cand_labels, labels
        every = np.stack([plans.run(plans.score(model, values, np.full(n * k, y, np.int64)))
                          for y in range(len(model.labels))], 1).astype(np.float64)  # (m, labels)
        scores["cls"] = logits - _logsumexp(every)  # D read as a classifier: log softmax over labels
        scores["d+cls"] = logits + scores["cls"]
    elif latent.codes:
        groups = latent_codes(z, latent.codes, latent.distribution)
        slots = groups[::k]
        per_code = code_scores(model, values)  # (m, codes)
        scores["own"] = per_code[np.arange(n * k), groups]  # the projection score of its own cluster
        scores["own-cls"] = scores["own"] - _logsumexp(per_code)
    else:
        groups, slots = np.zeros(n * k, np.int64), np.zeros(n, np.int64)
    return {"values": values, "logits": logits, "scores": scores, "groups": groups, "slots": slots,
            "labels": labels, "cand_labels": cand_labels, "k": k, "n": n, "seed": seed, "z": z}


def _logsumexp(x):
    m = x.max(1)
    return m + np.log(np.exp(x - m[:, None]).sum(1))


def code_scores(model, values):
    """Per-cluster logits of a coded D (its linear term plus each cluster's projection), read from the
    served ONNX graph's inner outputs: the same weights, before the logsumexp over clusters."""
    import onnx
    import onnxruntime as ort

    graph = onnx.load(str(model.path / "discriminator.onnx"))
    inner = {o for node in graph.graph.node for o in node.output}
    names = ["/D/score/Squeeze_output_0", "/D/score/MatMul_output_0"]
    assert all(x in inner for x in names), "not a coded D"
    for x in names:
        graph.graph.output.append(onnx.helper.make_empty_tensor_value_info(x))
    session = ort.InferenceSession(graph.SerializeToString(), session_options(1),
                                   providers=["CPUExecutionProvider"])
    outs = [session.run(names, {"sample": values[i:i + 1000]}) for i in range(0, len(values), 1000)]
    linear = np.concatenate([o[0] for o in outs]).astype(np.float64)
    return linear[:, None] + np.concatenate([o[1] for o in outs]).astype(np.float64)


def top_share(c, score):
    """Each group's best candidates, as many as it has slots (the shipped nice)."""
    keep = np.empty(c["n"], np.int64)
    for g in np.unique(c["slots"]):
        slots, pool = np.flatnonzero(c["slots"] == g), np.flatnonzero(c["groups"] == g)
        keep[slots] = pool[np.argsort(-score[pool], kind="stable")[:len(slots)]]
    return keep


def slot_best(c, score):
    """Each slot the best of its own k candidates."""
    return (score.reshape(c["n"], c["k"]).argmax(1) + np.arange(c["n"]) * c["k"])


def resample(c, score, temperature):
    """Each slot one of its own k, drawn with probability ∝ exp(score / T) (importance resampling)."""
    s = score.reshape(c["n"], c["k"]) / temperature
    p = np.exp(s - s.max(1, keepdims=True))
    cdf = np.cumsum(p / p.sum(1, keepdims=True), 1)
    u = uniforms(bits(c["seed"], 7, 0, c["n"], 1)[:, 0])
    return np.minimum((cdf < u[:, None]).sum(1), c["k"] - 1) + np.arange(c["n"]) * c["k"]


def metropolis(c, score, temperature):
    """Each slot an independence Metropolis-Hastings chain over its k candidates (Turner et al. 2019)."""
    s = score.reshape(c["n"], c["k"]) / temperature
    u = uniforms(bits(c["seed"], 8, 0, c["n"], c["k"]))
    state = np.zeros(c["n"], np.int64)
    for j in range(1, c["k"]):
        accept = np.log(u[:, j]) < s[:, j] - s[np.arange(c["n"]), state]
        state = np.where(accept, j, state)
    return state + np.arange(c["n"]) * c["k"]


def group_z(c, score):
    """Score relative to its group: (logit − group mean) / group std, ranked globally (no quotas)."""
    out = score.copy()
    for g in np.unique(c["groups"]):
        m = c["groups"] == g
        out[m] = (score[m] - score[m].mean()) / (score[m].std() + 1e-9)
    return np.argsort(-out, kind="stable")[:c["n"]]


def measure(c, keep) -> dict:
    labels = None if c["labels"] is None else c["cand_labels"][keep]
    m = evaluate.digit_images(c["values"][keep], labels)
    return {k: round(m[k], 4) for k in KEYS if k in m}


LEVERS = {
    "top_share": top_share,
    "slot_best": slot_best,
    **{f"resample_T{t}": (lambda t: lambda c, s: resample(c, s, t))(t) for t in (0.5, 1, 2, 4)},
    **{f"mh_T{t}": (lambda t: lambda c, s: metropolis(c, s, t))(t) for t in (0.5, 1, 2, 4)},
    "group_z": group_z,
}


def main(name: str, seeds: list[int], ks=(20, 10, 5, 3, 2), levers=None, n: int = 1000) -> list[dict]:
    evaluate.session_options = lambda threads: session_options(1)  # one thread: the cores are shared
    if Path(name).is_dir():  # a version folder (a candidate not yet in models/)
        card = Card.load(Path(name))
        model = load(card.name, card.version or 0, Path(name))
    else:
        repository = Repository([ROOT / "models"])
        repository.refresh(name)
        model = repository.get(name)
    rows = []
    for seed in seeds:
        plain = candidates(model, n, seed, 1)
        rows.append({"seed": seed, "lever": "plain", "k": 1, **measure(plain, np.arange(n))})
        print(json.dumps(rows[-1]), flush=True)
        for k in ks:
            c = candidates(model, n, seed, k)
            for score, values in c["scores"].items():
                for lever, choose in LEVERS.items():
                    if levers and lever not in levers:
                        continue
                    rows.append({"seed": seed, "lever": f"{lever}:{score}", "k": k,
                                 **measure(c, choose(c, values))})
                    print(json.dumps(rows[-1]), flush=True)
    return rows


if __name__ == "__main__":
    main(sys.argv[1], [int(s) for s in sys.argv[2:]] or [11, 12, 13, 14, 15, 16])
