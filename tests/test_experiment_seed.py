"""The run's seed reaches every source of a strategy's randomness."""

from __future__ import annotations

import pytest

from lifelong.config import validate
from lifelong.experiment import build_recipe


@pytest.mark.parametrize("strategy", ["hft", "ewc", "ewc+er"])
def test_seed_reaches_consolidators_and_memory(strategy):
    a = build_recipe(validate({"strategy": strategy, "seed": 0}).single(), None)
    b = build_recipe(validate({"strategy": strategy, "seed": 5}).single(), None)
    assert [c.seed for c in a.consolidators] == [0] and [c.seed for c in b.consolidators] == [5]
    if a.memory is not None:  # er's reservoir draws from the run's seed too
        assert a.memory.generator.initial_seed() != b.memory.generator.initial_seed()


def test_an_explicit_seed_parameter_wins():
    r = build_recipe(validate({"strategy": {"name": "hft", "params": {"seed": 9}}, "seed": 1}).single(), None)
    assert r.consolidators[0].seed == 9
