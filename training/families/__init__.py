"""The model families: one file each. Adding a family is one file and one line here."""
from training.families import curves, curves_cgan, digits_cyclegan, mnist_cgan, mnist_dcgan, mnist_mlp, quadratic, rgb_dcgan

FAMILIES = {
    "quadratic": quadratic,
    "curves": curves,
    "curves-cgan": curves_cgan,
    "mnist-mlp": mnist_mlp,
    "mnist-dcgan": mnist_dcgan,
    "mnist-cgan": mnist_cgan,
    "rgb-dcgan": rgb_dcgan,
    "digits-cyclegan": digits_cyclegan,
}


def get_family(name: str):
    """The family module for a name; ValueError lists the known ones."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(f"unknown family {name!r}; known: {sorted(FAMILIES)}") from None
