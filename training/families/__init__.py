"""The model families: one file each (the protocol: base.py). Adding a family is one file and one line here."""
from training.families import (curves, curves_cgan, digits_cyclegan, image_cgan, mnist_cgan, mnist_dcgan, mnist_mlp,
                               quadratic, rgb_dcgan)
from training.families.base import Family, register

FAMILIES: dict[str, Family] = register(
    quadratic.Quadratic,
    curves.Curves,
    curves_cgan.CurvesCGAN,
    mnist_mlp.MnistMlp,
    mnist_dcgan.MnistDcgan,
    mnist_cgan.MnistCgan,
    rgb_dcgan.RgbDcgan,
    image_cgan.ImageCgan,
    digits_cyclegan.DigitsCycleGAN,
)


def get_family(name: str) -> Family:
    """The family registered under a name; ValueError lists the known ones."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(f"unknown family {name!r}; known: {sorted(FAMILIES)}") from None
