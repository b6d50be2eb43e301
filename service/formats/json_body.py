"""json: samples as numbers (points, curves) or base64 PNGs (images), with labels, scores and what was drawn."""
from __future__ import annotations

import base64
import json

import numpy as np

from service.formats import Encoder
from service.formats.pictures import pixels, png
from service.sampling.samples import Samples


class Json(Encoder):
    name = "json"
    media_type = "application/json"
    help = "numbers (points, curves) or base64 PNGs (images), with labels, scores and the seed"

    def samples(self, samples: Samples, grid=None, picture=None) -> bytes:
        if samples.images:
            body = [base64.b64encode(png(img)).decode() for img in pixels(samples)]
        else:
            body = np.round(samples.values.astype(np.float64), 6).tolist()
        out = {"model": samples.model, "version": samples.version, "seed": samples.seed, "mode": samples.mode,
               "samples": body}
        if samples.labels is not None:
            out["labels"] = samples.label_names_per_sample()
        if samples.scores is not None:
            out["scores"] = np.round(samples.scores.astype(np.float64), 6).tolist()
        if samples.candidates != len(samples.values) or samples.scores is not None:  # drawn more than it kept
            out["candidates"] = samples.candidates
        if samples.acceptance is not None:
            out["acceptance_rate"] = round(samples.acceptance, 6)
        if samples.truncation != 1:
            out["truncation"] = samples.truncation
        return json.dumps(out, separators=(",", ":")).encode()

    def translation(self, result) -> bytes:
        body = {"model": result.model, "version": result.version, "direction": result.direction,
                "from": result.source, "to": result.target,
                "images": [base64.b64encode(png(img)).decode() for img in pixels(result)],
                "scores": np.round(result.scores.astype(np.float64), 6).tolist()}
        return json.dumps(body, separators=(",", ":")).encode()

    def cheap(self, samples: Samples) -> bool:
        return not samples.images and samples.values.nbytes <= 2**20
