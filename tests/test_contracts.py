"""The contracts are real: the Objective protocol is complete and implemented, Recipe refuses
wrong kinds of objects, registered classes refuse unknown keywords, strategies follow the registry."""

from __future__ import annotations

import pytest
import torch

from lifelong.consolidation import CONSOLIDATORS, DERPP, EWC, Consolidator, DERPlusPlus
from lifelong.curriculum import SCHEDULES, LinearPacing, Uniform, UniformReplay
from lifelong.data import make_benchmark, split_digits
from lifelong.engine import Recipe
from lifelong.engine.objective import ClassificationObjective, Objective
from lifelong.errors import ConfigError
from lifelong.memory import BUFFERS, Reservoir
from lifelong.strategies import STRATEGIES, build_strategy

#: what the loop, the Trainer driver, LwF, DER, A-GEM, scorers and buffers call on an objective
CALLED = ("model_fields", "scenario", "num_classes", "begin_task", "forward", "mask_logits", "per_sample_loss",
          "loss", "correct", "distillation", "evaluate", "probes")


def test_objective_protocol_lists_what_is_called_and_both_objectives_satisfy_it():
    members = set(Objective.__annotations__) | {n for n in vars(Objective) if not n.startswith("_")}
    assert set(CALLED) <= members
    from lifelong.hf.objective import CausalLMObjective

    digits = make_benchmark("split-digits")
    arithmetic = make_benchmark("arithmetic-skills", train_size=8, test_size=4)
    cls_obj, lm_obj = ClassificationObjective(digits), CausalLMObjective(arithmetic)
    assert isinstance(cls_obj, Objective) and isinstance(lm_obj, Objective)
    assert cls_obj.probes(torch.nn.Identity(), digits, torch.device("cpu"), 8) == {}
    assert lm_obj.num_classes is None and lm_obj.scenario == "domain"
    logits = torch.randn(2, 5, 7)
    assert lm_obj.mask_logits(logits, arithmetic[0].train) is logits
    data = arithmetic[0].train.take(torch.arange(4))
    out = torch.randn(4, data["input_ids"].shape[1], 40)
    assert torch.allclose(lm_obj.loss(out, data), lm_obj.per_sample_loss(out, data).mean())


def test_recipe_refuses_wrong_kinds_of_objects():
    mem = Reservoir(capacity=10)
    with pytest.raises(ConfigError, match="'uniform' \\(Uniform\\) is not a review schedule; choose one of: "
                                          "power-law-review, replay, spaced-review"):
        Recipe(memory=mem, review=Uniform())
    with pytest.raises(ConfigError, match="'linear'.*not a review schedule"):
        Recipe(memory=mem, review=LinearPacing())
    with pytest.raises(ConfigError, match="consolidator: str is not a Consolidator"):
        Recipe(consolidators=["ewc"])
    with pytest.raises(ConfigError, match="memory: int is not a Memory"):
        Recipe(memory=200)
    with pytest.raises(ConfigError, match="curriculum: object is not a Schedule"):
        Recipe(curriculum=object())
    ok = Recipe(memory=mem, review=UniformReplay(0.3), curriculum=LinearPacing(), consolidators=(EWC(),))
    assert isinstance(ok.consolidators, list) and ok.review.ratio == 0.3


def test_wrong_keywords_name_the_accepted_parameters_built_or_constructed():
    with pytest.raises(ConfigError, match="consolidator 'ewc' has no parameter 'lamda'. Did you mean 'lambda_'\\? "
                                          "Its parameters are: lambda_, samples, fisher_batch, seed"):
        EWC(lamda=1.0)
    with pytest.raises(ConfigError, match="no parameter 'lamda'"):
        CONSOLIDATORS.get("ewc")(lamda=1.0)
    with pytest.raises(ConfigError, match="no parameter 'lamda'"):
        CONSOLIDATORS.build("ewc", {"lamda": 1.0})
    with pytest.raises(ConfigError, match="schedule 'linear' has no parameter 'begin'.*start, full_at, warmup"):
        LinearPacing(begin=0.1)
    with pytest.raises(ConfigError, match="memory buffer 'reservoir' has no parameter 'size'.*capacity, seed"):
        Reservoir(size=10)
    with pytest.raises(ConfigError, match="benchmark 'split-digits' has no parameter 'tasks'.*n_tasks"):
        split_digits(tasks=2)
    with pytest.raises(ConfigError, match="schedule 'anti': .*Its parameters are"):
        SCHEDULES.get("anti")("linear", 0.2, 0.8, None, 2.0, 5, "extra")
    # subclasses keep working: DER++ calls DER's checked __init__ with its own arguments
    d = DERPP(alpha=0.1, beta=0.2)
    assert DERPP is DERPlusPlus and d.alpha == 0.1 and d.beta == 0.2 and d.needs_memory
    assert BUFFERS.build("reservoir", {"capacity": 5}).capacity == 5


def test_a_new_consolidator_file_is_a_new_strategy_with_nothing_else_to_edit():
    name = "test-only-anchor"

    @CONSOLIDATORS.register(name)
    class Anchor(Consolidator):
        """Test-only: needs a memory."""

        name = "test-only-anchor"
        needs_memory = True

        def __init__(self, weight: float = 1.0):
            self.weight = weight

    try:
        assert name in STRATEGIES and name in STRATEGIES.names()
        r = build_strategy(name, {"memory_size": 12, "weight": 3.0})
        assert isinstance(r.consolidators[0], Anchor) and r.consolidators[0].weight == 3.0
        assert isinstance(r.memory, Reservoir) and r.memory.capacity == 12
        with pytest.raises(ConfigError, match="has no parameter 'wieght'"):
            build_strategy(name, {"wieght": 3.0})
    finally:  # leave the shared registries as they were
        CONSOLIDATORS._entries.pop(name)
        STRATEGIES._entries.pop(name, None)


def test_consolidator_strategies_follow_needs_memory():
    for entry in CONSOLIDATORS.entries():
        if entry.name == "lora":
            continue
        recipe = build_strategy(entry.name)
        assert (recipe.memory is not None) == entry.obj.needs_memory, entry.name
        assert type(recipe.consolidators[0]) is entry.obj
        assert STRATEGIES.get(entry.name).__doc__.startswith(entry.obj.title or entry.summary)
