"""A generator made elsewhere is read into a validated card: its latent width, label input and count, sample
shape and value range from its graph and a probe run; only the latent distribution is asked. The graphs are
exported here from architectures this project did not write (random weights), then served as any version is."""
from __future__ import annotations

import io
import tarfile

import numpy as np
import pytest

from service.repository.imports import ImportError_, inspect, write

torch = pytest.importorskip("torch")
nn = torch.nn
pytestmark = pytest.mark.quality  # torch exports the foreign graphs


class DCGANGenerator(nn.Module):
    """PyTorch's DCGAN example: z (n, nz, 1, 1) -> transposed convolutions -> (n, 3, 64, 64) tanh."""

    def __init__(self, nz: int = 100, ngf: int = 8):
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
            nn.ConvTranspose2d(ngf, 3, 4, 2, 1, bias=False), nn.Tanh())

    def forward(self, noise):
        return self.main(noise)


class DCGANDiscriminator(nn.Module):
    """Its discriminator: strided convolutions -> a probability (n, 1, 1, 1) through a sigmoid."""

    def __init__(self, ndf: int = 8):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(3, ndf, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(ndf, ndf * 2, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(ndf * 4, 1, 8, 1, 0), nn.Sigmoid())

    def forward(self, image):
        return self.main(image)


class EmbeddingGenerator(nn.Module):
    """A conditional generator of another school: the label through an embedding table, concatenated to z,
    upsampled to (n, 64, 64, 3) channels-last, sigmoid."""

    def __init__(self, classes: int = 7, width: int = 32):
        super().__init__()
        self.embed = nn.Embedding(classes, 16)
        self.fc = nn.Linear(width + 16, 16 * 8 * 8)
        self.up = nn.Sequential(nn.Upsample(scale_factor=8), nn.Conv2d(16, 3, 3, padding=1), nn.Sigmoid())

    def forward(self, noise, cls):
        h = self.fc(torch.cat([noise, self.embed(cls)], 1)).view(-1, 16, 8, 8)
        return self.up(h).permute(0, 2, 3, 1)  # (n, 64, 64, 3)


def exported(module, inputs, names, output="out") -> bytes:
    buffer = io.BytesIO()
    torch.manual_seed(0)
    module.eval()
    torch.onnx.export(module, inputs, buffer, input_names=names, output_names=[output], opset_version=17,
                      dynamo=False, dynamic_axes={n: {0: "batch"} for n in [*names, output]})
    return buffer.getvalue()


@pytest.fixture(scope="module")
def dcgan():
    torch.manual_seed(0)
    return (exported(DCGANGenerator(), (torch.randn(2, 100, 1, 1),), ["noise"]),
            exported(DCGANDiscriminator(), (torch.rand(2, 3, 64, 64),), ["image"], "prob"))


@pytest.fixture(scope="module")
def conditional():
    torch.manual_seed(1)
    return exported(EmbeddingGenerator(), (torch.randn(2, 32), torch.tensor([0, 6])), ["noise", "cls"])


def test_a_dcgan_of_64x64_rgb_is_read_from_its_graph_and_a_probe(dcgan):
    g, d = dcgan
    imported = inspect(g, "faces", latent="normal", discriminator=d)
    card = imported.card
    assert (card.latent.dim, card.latent.distribution, card.sample_shape) == (100, "normal", [3, 64, 64])
    assert card.labels is None and tuple(card.value_range) == (-1.0, 1.0)
    assert "(n, d, 1, 1)" not in imported.found["latent.dim"] and "noise" in imported.found["latent.dim"]
    assert "sigmoid" in imported.found["score"]


def test_a_conditional_generator_with_an_embedding_says_its_label_count(conditional):
    imported = inspect(conditional, "patterns", latent="uniform")
    card = imported.card
    assert card.labels == [str(i) for i in range(7)] and card.latent.dim == 32
    assert card.sample_shape == [3, 64, 64] and "transposed" in imported.found["sample_shape"]
    assert tuple(card.value_range) == (0.0, 1.0)  # a sigmoid's


def test_label_names_must_match_the_graphs_count(conditional):
    named = inspect(conditional, "patterns", latent="normal", labels=list("abcdefg"))
    assert named.card.labels == list("abcdefg")
    with pytest.raises(ImportError_, match="labels: 3 names given, the generator's graph takes 7"):
        inspect(conditional, "patterns", latent="normal", labels=["a", "b", "c"])


def test_what_cannot_be_read_must_be_given(dcgan):
    with pytest.raises(ImportError_, match="latent: the distribution"):
        inspect(dcgan[0], "faces", latent=None)
    with pytest.raises(ImportError_, match="generator: not an ONNX model"):
        inspect(b"not a graph", "faces", latent="normal")
    with pytest.raises(ImportError_, match="labels: given, but the generator takes no label input"):
        inspect(dcgan[0], "faces", latent="normal", labels=3)


def test_an_imported_generator_serves_png_npz_and_a_dataset_tar(dcgan, conditional, tmp_path, make_app):
    write(inspect(*dcgan[:1], "faces", latent="normal", discriminator=dcgan[1]), _version(tmp_path, "faces"))
    write(inspect(conditional, "patterns", latent="uniform"), _version(tmp_path, "patterns"))
    with make_app(tmp_path) as api:
        png = api.get("/v1/models/faces/samples.png", params={"n": 4, "seed": 1})
        assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"
        npz = api.post("/v1/models/faces/samples", json={"n": 3, "seed": 1, "format": "npz", "mode": "nice",
                                                        "oversample": 2})
        assert npz.status_code == 200, npz.text
        x = np.load(io.BytesIO(npz.content))["x"]
        assert x.shape[0] == 3 and x.shape[-1] == 3 or x.shape[1] == 3
        tar = api.post("/v1/datasets", json={"model": "patterns", "labels": {"2": 2, "5": 1}, "format": "tar",
                                            "seed": 3})
        assert tar.status_code == 200, tar.text
        with tarfile.open(fileobj=io.BytesIO(tar.content)) as archive:
            names = archive.getnames()
        assert sum(n.endswith(".png") for n in names) == 3


def _version(root, name):
    folder = root / name / "1"
    folder.mkdir(parents=True)
    return folder


def test_importing_over_http_publishes_a_keyed_version_that_serves_in_its_own_range(dcgan, conditional, make_app):
    key = {"Authorization": "Bearer importer-key"}
    with make_app(api_keys="importer-key,other-key") as api:
        files = {"generator": ("g.onnx", dcgan[0]), "discriminator": ("d.onnx", dcgan[1])}
        r = api.post("/v1/models/faces/versions", headers=key, files=files, data={"latent": "normal"})
        assert r.status_code == 201, r.text
        assert r.json()["default"] == 1 and r.json()["card"]["sample_shape"] == [3, 64, 64]
        assert "nice" in r.json()["modes"]
        again = api.post("/v1/models/faces/versions", headers={"Authorization": "Bearer other-key"}, files=files)
        assert again.status_code == 403 and again.json()["error"]["field"] == "model"  # another key's name
        sigmoid = api.post("/v1/models/sigmoid/versions", headers=key, data={"latent": "uniform"},
                           files={"generator": ("g.onnx", conditional)})
        assert sigmoid.status_code == 201 and sigmoid.json()["card"]["value_range"] == [0.0, 1.0]
        x = np.load(io.BytesIO(api.post("/v1/models/sigmoid/samples", json={"n": 16, "seed": 2, "format": "npy",
                                                                              "labels": ["3"] * 16}).content))
        assert x.dtype == np.uint8 and 100 < x.mean() < 155  # sigmoid ~0.5 read in [0, 1] (as [-1, 1]: ~191)
        bad = api.post("/v1/models/junk/versions", headers=key, files={"generator": ("g.onnx", b"not onnx")})
        assert bad.status_code == 422 and bad.json()["error"]["field"] == "generator"


def test_one_command_imports_a_64x64_rgb_generator_that_serves_png_npz_and_tar(dcgan, tmp_path):
    import os
    import subprocess
    import sys

    from tests.utils import ROOT, TINY_MODELS, database_url, serve

    (tmp_path / "g.onnx").write_bytes(dcgan[0])
    (tmp_path / "d.onnx").write_bytes(dcgan[1])
    data = tmp_path / "var"
    env = {**os.environ, "GANSERVE_DATA": str(data), "GANSERVE_REPOSITORY": f"{data / 'models'}:{TINY_MODELS}",
           "GANSERVE_DATABASE_URL": database_url(data)}
    done = subprocess.run([sys.executable, "-m", "ganserve.cli", "import", str(tmp_path / "g.onnx"), "--discriminator",
                           str(tmp_path / "d.onnx"), "--name", "faces"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    srv = serve(TINY_MODELS, data)
    with srv.client() as api:
        assert api.get("/v1/models/faces/samples.png", params={"n": 4}).headers["content-type"] == "image/png"
        npz = np.load(io.BytesIO(api.post("/v1/models/faces/samples", json={"n": 2, "format": "npz"}).content))
        assert npz["x"].shape == (2, 64, 64, 3)
        tar = api.post("/v1/datasets", json={"model": "faces", "n": 3, "format": "tar", "mode": "nice"})
        with tarfile.open(fileobj=io.BytesIO(tar.content)) as archive:
            assert sum(n.endswith(".png") for n in archive.getnames()) == 3
    srv.stop()
