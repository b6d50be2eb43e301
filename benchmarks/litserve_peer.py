"""The peer: LitServe serving the same generator ONNX with its own batching (plain mode only).

    python benchmarks/litserve_peer.py MODEL_DIR PORT [MAX_BATCH] [BATCH_TIMEOUT_S]

Requests are `{"n": 1, "seed": 0}`; the answer is the .npy of uint8 images, as ganserve's
`format: "npy"`. Latents are drawn with ganserve's own (seed, index) function so both servers do
the same work per request.
"""
from __future__ import annotations

import io
import sys
from pathlib import Path

import litserve as ls
import numpy as np
import onnxruntime as ort
from fastapi import Response

from service.repository import Card
from service.sampling import latents
from service.formats.pictures import to_uint8


class GeneratorAPI(ls.LitAPI):
    def __init__(self, model_dir: Path, **kwargs):
        super().__init__(**kwargs)
        self.model_dir = model_dir

    def setup(self, device):
        card = Card.load(self.model_dir)
        self.dim, self.dist = card.latent.dim, card.latent.distribution
        # onnxruntime's default options (a thread per core), as for the plain peer: what a user writes.
        self.session = ort.InferenceSession(str(self.model_dir / "generator.onnx"), providers=["CPUExecutionProvider"])

    def decode_request(self, request):
        return latents(int(request.get("seed", 0)), 0, int(request.get("n", 1)), self.dim, self.dist)

    def batch(self, inputs):
        return inputs  # a list of (n_i, dim) latents: concatenated in predict

    def predict(self, zs):
        if isinstance(zs, np.ndarray):  # unbatched (max_batch_size 1)
            return self.session.run(None, {"z": zs})[0]
        out = self.session.run(None, {"z": np.concatenate(zs)})[0]
        splits = np.cumsum([len(z) for z in zs])[:-1]
        return np.split(out, splits)

    def unbatch(self, output):
        return output

    def encode_response(self, output):
        buffer = io.BytesIO()
        np.save(buffer, to_uint8(output))
        return Response(buffer.getvalue(), media_type="application/octet-stream")


def main() -> None:
    model_dir, port = Path(sys.argv[1]), int(sys.argv[2])
    max_batch = int(sys.argv[3]) if len(sys.argv) > 3 else 32
    timeout = float(sys.argv[4]) if len(sys.argv) > 4 else 0.005
    api = GeneratorAPI(model_dir, max_batch_size=max_batch, batch_timeout=timeout if max_batch > 1 else 0.0)
    server = ls.LitServer(api, accelerator="cpu", workers_per_device=1)
    server.run(host="127.0.0.1", port=port, generate_client_file=False, log_level="warning")


if __name__ == "__main__":
    main()
