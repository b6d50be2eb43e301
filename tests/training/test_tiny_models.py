"""The tiny models the unit and api tiers serve are what the trainer and exporter make today."""
from __future__ import annotations

import numpy as np

from service.repository import Card, load
from tests.make_tiny_models import make
from tests.utils import TINY_MODELS, TINY_SERVED


def test_the_checked_in_tiny_models_are_what_the_exporter_makes(tmp_path):
    fresh = make(tmp_path / "models")
    for family in TINY_SERVED:
        kept, made = Card.load(TINY_MODELS / family / "1"), Card.load(fresh / family / "1")
        ignore = {"created", "lineage", "training"}  # times, the commit and the run's seconds
        assert kept.model_dump(exclude=ignore) == made.model_dump(exclude=ignore), (
            f"{family}: run `make tiny-models` and commit tests/assets/models")
        old, new = load(family, 1, TINY_MODELS / family / "1", 1), load(family, 1, fresh / family / "1", 1)
        for name, network in old.networks.items() or (("generator", old.generator),):
            feed = {i.name: np.zeros([2, *(d if isinstance(d, int) else 1 for d in i.shape[1:])],
                                     np.int64 if "int" in i.type else np.float32) for i in network.get_inputs()}
            other = new.networks[name] if old.networks else new.generator
            np.testing.assert_allclose(network.run(None, feed)[0], other.run(None, feed)[0], atol=1e-5)
