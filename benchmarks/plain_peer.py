"""The plain peer: a FastAPI app with inference inline on the event loop, no batching, no limits.

    python benchmarks/plain_peer.py MODEL_DIR PORT

What a user writes in twenty lines: one onnxruntime session with its default options (a thread per
core), `POST /predict` with `{"n": 1, "seed": 0}`, the .npy of uint8 images back (ganserve's
`format: "npy"`). Latents come from ganserve's own (seed, index) function, so every server does the
same work per request.
"""
from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import uvicorn
from fastapi import FastAPI, Request, Response

from service.repository import Card
from service.sampling import latents
from service.formats.pictures import to_uint8


def create(model_dir: Path) -> FastAPI:
    card = Card.load(model_dir)
    session = ort.InferenceSession(str(model_dir / "generator.onnx"), providers=["CPUExecutionProvider"])
    app = FastAPI()

    @app.get("/health")
    async def health():
        return {"ok": True}

    @app.post("/predict")
    async def predict(request: Request):
        body = await request.json()
        z = latents(int(body.get("seed", 0)), 0, int(body.get("n", 1)), card.latent.dim, card.latent.distribution)
        buffer = io.BytesIO()
        np.save(buffer, to_uint8(session.run(None, {"z": z})[0]))
        return Response(buffer.getvalue(), media_type="application/octet-stream")

    return app


if __name__ == "__main__":
    uvicorn.run(create(Path(sys.argv[1])), host="127.0.0.1", port=int(sys.argv[2]), log_level="warning",
                access_log=False)
