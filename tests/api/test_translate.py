"""POST /v1/models/{name}/translate through real HTTP: every input and output format, directions, and bad input."""
from __future__ import annotations

import base64
import io
import struct
import zipfile
import zlib

import numpy as np
import pytest
from PIL import Image

NAME = "digits-cyclegan"
FORMATS = ["json", "png", "npy", "npz", "zip", "gif", "webp"]


def digits(n: int, size: int = 28, seed: int = 0) -> np.ndarray:
    """n grey uint8 images (n, size, size) with a bright blob of ink on a dark ground."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, size, size), np.uint8)
    lo, hi = size // 4, 3 * size // 4
    x[:, lo:hi, lo:hi] = rng.integers(100, 256, (n, hi - lo, hi - lo))
    return x


def png_bytes(img: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(img).save(buffer, format="PNG")
    return buffer.getvalue()


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def send(api, files, **fields):
    return api.post(f"/v1/models/{NAME}/translate", files=[("file", f) for f in files],
                    data={k: str(v) for k, v in fields.items()})


def as_json(api, images, **fields):
    return api.post(f"/v1/models/{NAME}/translate",
                    json={"images": [base64.b64encode(png_bytes(i)).decode() for i in images], **fields})


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_output_format(serving_api, fmt):
    r = send(serving_api, [("x.npy", npy_bytes(digits(3)))], direction="a_to_b", format=fmt)
    assert r.status_code == 200, r.text
    assert r.headers["x-model"] == NAME and r.headers["x-direction"] == "a_to_b"
    if fmt == "json":
        body = r.json()
        assert (body["direction"], body["from"], body["to"]) == ("a_to_b", "mnist", "uci")
        assert len(body["images"]) == len(body["scores"]) == 3
        assert Image.open(io.BytesIO(base64.b64decode(body["images"][0]))).size == (28, 28)
    elif fmt == "png":
        grid = Image.open(io.BytesIO(r.content))
        assert grid.format == "PNG" and grid.size == (60, 3 * 28)  # one pair a row (3 images: 1 column), gap after
    elif fmt == "npy":
        out = np.load(io.BytesIO(r.content))
        assert out.shape == (3, 28, 28) and out.dtype == np.uint8
    elif fmt == "npz":
        out = np.load(io.BytesIO(r.content))
        assert out["images"].shape == out["inputs"].shape == (3, 28, 28) and out["scores"].shape == (3,)
        np.testing.assert_array_equal(out["inputs"], digits(3))  # 28×28 inputs are taken as they are
    elif fmt == "zip":
        with zipfile.ZipFile(io.BytesIO(r.content)) as archive:
            assert sorted(archive.namelist()) == ["000000.png", "000001.png", "000002.png", "index.csv"]
            rows = archive.read("index.csv").decode().splitlines()
            assert rows[0] == "file,score" and len(rows) == 4
    else:
        assert Image.open(io.BytesIO(r.content)).n_frames == 3


def test_every_input_format_gives_the_same_translation(serving_api):
    x = digits(4)
    want = np.load(io.BytesIO(send(serving_api, [("x.npy", npy_bytes(x))], direction="b_to_a", format="npy").content))
    npz = io.BytesIO()
    np.savez(npz, x=x)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        for i, img in enumerate(x):
            z.writestr(f"digits/{i}.png", png_bytes(img))
    floats = x.astype(np.float32) / 127.5 - 1  # the model's own [-1, 1]
    for files in ([("x.npz", npz.getvalue())], [("x.zip", archive.getvalue())],
                  [(f"{i}.png", png_bytes(img)) for i, img in enumerate(x)], [("f.npy", npy_bytes(floats[:, None]))]):
        r = send(serving_api, files, direction="b_to_a", format="npy")
        assert r.status_code == 200, r.text
        np.testing.assert_array_equal(np.load(io.BytesIO(r.content)), want)
    r = as_json(serving_api, x, direction="b_to_a", format="npy")
    assert r.status_code == 200, r.text
    np.testing.assert_array_equal(np.load(io.BytesIO(r.content)), want)


@pytest.mark.parametrize("direction, canonical", [("a_to_b", "a_to_b"), ("uci", "a_to_b"), ("mnist_to_uci", "a_to_b"),
                                                  ("b_to_a", "b_to_a"), ("mnist", "b_to_a"), ("uci_to_mnist", "b_to_a")])
def test_directions_by_side_or_domain_name(serving_api, direction, canonical):
    r = as_json(serving_api, digits(1), direction=direction)
    assert r.status_code == 200, r.text
    assert r.json()["direction"] == canonical


def test_the_same_request_gives_the_same_bytes_alone_or_among_others(serving_api):
    import concurrent.futures

    x = digits(6, seed=3)
    alone = send(serving_api, [("x.npy", npy_bytes(x))], direction="a_to_b", format="npz").content
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda i: send(serving_api, [("x.npy", npy_bytes(x if i % 2 else digits(9, seed=i)))],
                                               direction="a_to_b", format="npz").content, range(6)))
    assert [r == alone for r in results[1::2]] == [True] * 3, [r[:200] for r in results[1::2]]


def test_8x8_digits_are_fitted_as_mnist_was(serving_api):
    from service.sampling.images import mnist_fit

    small = digits(2, size=8)
    r = send(serving_api, [("x.npy", npy_bytes(small))], direction="b_to_a", format="npz")
    assert r.status_code == 200, r.text
    fitted = np.stack([mnist_fit(img / 255.0) for img in small])
    np.testing.assert_array_equal(np.load(io.BytesIO(r.content))["inputs"],
                                  np.clip(np.rint(fitted * 255), 0, 255).astype(np.uint8))


def bomb_png(width: int, height: int) -> bytes:
    """A PNG whose header claims width×height grey pixels and whose data is a few bytes (never decodable)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("files, fields, status, message", [
    ([("x.npy", npy_bytes(np.zeros((2, 20, 30), np.uint8)))], {}, 422, "images: image 0 is 30×20"),
    ([("x.png", png_bytes(np.zeros((28, 40), np.uint8)))], {}, 422, "images: image 0 is 40×28"),
    ([("notes.txt", b"hello, these are not digits")], {}, 422, "notes.txt: not a readable image"),
    ([("x.npy", npy_bytes(np.array(["a", "b"])))], {}, 422, "x.npy: images must be real numbers"),
    ([("x.npy", npy_bytes(np.zeros((2000, 28, 28), np.uint8)))], {}, 422, "x.npy: 2000 images is over the limit of 1024 (max_n)"),
    ([("bomb.png", bomb_png(5_000, 5_000))], {}, 422, "bomb.png: 5000×5000 images are over the limit of 1048576"),
    ([("bomb.png", bomb_png(100_000, 100_000))], {}, 422, "bomb.png: its header claims more pixels than the limit"),
    ([("x.npy", npy_bytes(np.full((1, 28, 28), 300.0, np.float32)))], {}, 422, "x.npy: pixels must lie in"),
    ([("x.npy", npy_bytes(digits(1)))], {"direction": "sideways"}, 422, "direction: unknown direction 'sideways'"),
    ([("x.npy", npy_bytes(digits(1)))], {"format": "gifv"}, 422, "format:"),
])
def test_bad_input_is_refused_naming_the_problem(serving_api, files, fields, status, message):
    r = send(serving_api, files, **{"direction": "a_to_b", **fields})
    assert r.status_code == status, r.text
    assert r.json()["error"]["message"].startswith(message), r.json()


def test_a_zip_of_many_images_is_counted_before_decoding(serving_api):
    archive = io.BytesIO()
    one = png_bytes(digits(1)[0])
    with zipfile.ZipFile(archive, "w") as z:
        for i in range(1100):
            z.writestr(f"{i:04d}.png", one)
    r = send(serving_api, [("many.zip", archive.getvalue())], direction="a_to_b")
    assert r.status_code == 422 and "over the limit of 1024 (max_n)" in r.json()["error"]["message"]


def test_json_input_errors(serving_api):
    r = serving_api.post(f"/v1/models/{NAME}/translate", json={"images": ["***"], "direction": "a_to_b"})
    assert r.status_code == 422 and r.json()["error"]["message"] == "images.0: not base64"
    r = serving_api.post(f"/v1/models/{NAME}/translate", json={"images": [], "direction": "a_to_b"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "images"
    r = serving_api.post(f"/v1/models/{NAME}/translate", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422


def test_sampling_models_do_not_translate_and_translation_models_do_not_sample(serving_api):
    r = serving_api.post("/v1/models/mnist-dcgan/translate", json={"images": ["AAAA"], "direction": "a_to_b"})
    assert r.status_code == 422 and "translates nothing" in r.json()["error"]["message"]
    r = serving_api.post(f"/v1/models/{NAME}/samples", json={"n": 2})
    assert r.status_code == 422 and f"/v1/models/{NAME}/translate" in r.json()["error"]["message"]
    assert serving_api.post("/v1/models/nope/translate", json={"images": ["AAAA"], "direction": "a_to_b"}).status_code == 404


def test_the_model_lists_its_domains(serving_api):
    card = serving_api.get(f"/v1/models/{NAME}").json()["card"]
    assert card["kind"] == "translation" and card["domains"]["b"]["name"] == "uci" and card["latent"] is None
    limits = serving_api.get("/v1/limits").json()
    assert limits["max_translate_bytes"] > 0 and limits["max_translate_pixels"] > 0


@pytest.mark.system  # a real server process (serve)
def test_a_body_over_the_limit_is_413(tmp_path_factory, serving_repository):
    from tests.utils import serve

    srv = serve(serving_repository, tmp_path_factory.mktemp("small-var"), max_translate_bytes=1000)
    try:
        with srv.client() as api:
            r = send(api, [("x.npy", npy_bytes(digits(4)))], direction="a_to_b")
            assert r.status_code == 413 and "max_translate_bytes" in r.json()["error"]["message"]
    finally:
        srv.stop()
