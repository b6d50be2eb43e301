"""The model families: one file each. Adding a family is one file and one line here."""
from training.families import quadratic

FAMILIES = {
    "quadratic": quadratic,
}


def get_family(name: str):
    """The family module for a name; ValueError lists the known ones."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(f"unknown family {name!r}; known: {sorted(FAMILIES)}") from None
