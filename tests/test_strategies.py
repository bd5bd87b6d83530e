"""Strategy presets, composition, and the issue's evidence on class-incremental split-digits."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lifelong.consolidation import EWC, SI
from lifelong.curriculum import SCHEDULES
from lifelong.data.benchmarks import make_benchmark
from lifelong.engine import TrainConfig, seed_everything, train_stream
from lifelong.errors import ConfigError
from lifelong.memory import ClassBalanced, Herding, Reservoir
from lifelong.models import build_model
from lifelong.strategies import STRATEGIES, build_strategy, compose

ALL = ["naive", "joint", "cumulative", "er", "ewc", "online-ewc", "si", "l2", "lwf", "agem", "der", "der++",
       "gdumb", "hft", "freeze", "average", "magmax", "ema", "slow-learner"]
#: strategies that keep every past example: not bounded-memory continual learners
KEEPS_ALL_DATA = {"joint", "cumulative"}


def run(stream, name: str, epochs: int, seed: int = 0, params: dict | None = None):
    seed_everything(seed)
    model = build_model("mlp", stream, hidden=[128])
    cfg = TrainConfig(epochs=epochs, batch_size=32, lr=0.05, momentum=0.9, device="cpu", seed=seed, log_every=0)
    return train_stream(stream, model, build_strategy(name, params), cfg)


def final_average(result) -> float:
    return float(np.mean(result.accuracy[-1]))


@pytest.fixture(scope="module")
def digits():
    stream = make_benchmark("split-digits", seed=0)
    assert stream.scenario == "class" and len(stream) == 5
    return stream


# ----------------------------------------------------------------------------- presets
def test_every_preset_is_registered_with_a_summary():
    # 'lora' adapts language models; tests/test_hf_strategies.py and test_hf_resume.py run it
    assert sorted(ALL + ["lora"]) == STRATEGIES.names()
    assert all(e.summary for e in STRATEGIES.entries())


def test_presets_build_the_expected_recipes():
    er = build_strategy("er", {"memory_size": 50, "ratio": 0.25})
    assert isinstance(er.memory, Reservoir) and er.memory.capacity == 50
    assert er.review.name == "replay" and er.review.ratio == 0.25 and er.pool == "current"
    gd = build_strategy("gdumb")
    assert isinstance(gd.memory, ClassBalanced) and gd.pool == "memory" and gd.reinit
    assert build_strategy("joint").pool == "joint" and build_strategy("cumulative").pool == "cumulative"
    ewc = build_strategy("ewc", {"lambda": 7.0, "samples": 10})
    assert isinstance(ewc.consolidators[0], EWC) and ewc.consolidators[0].lambda_ == 7.0
    der = build_strategy("der++", {"memory_size": 30, "buffer": "herding", "beta": 0.1})
    assert isinstance(der.memory, Herding) and der.consolidators[0].beta == 0.1
    assert build_strategy("naive").consolidators == [] and build_strategy("naive").memory is None


def test_preset_errors_name_the_bad_input():
    with pytest.raises(ConfigError, match="Did you mean 'ewc'"):
        build_strategy("ewk")
    with pytest.raises(ConfigError, match="'ewc' has no parameter 'gamma'"):
        build_strategy("ewc", {"gamma": 0.5})
    with pytest.raises(ConfigError, match="'naive' has no parameter 'memory_size'"):
        build_strategy("naive", {"memory_size": 10})
    with pytest.raises(ConfigError, match="memory_size"):
        build_strategy("er", {"memory_size": 0})
    with pytest.raises(ConfigError, match="unknown memory buffer 'fifo'"):
        build_strategy("er", {"buffer": "fifo"})
    with pytest.raises(ConfigError, match="review ratio"):
        build_strategy("er", {"ratio": 1.5})


# ----------------------------------------------------------------------------- compose
def test_compose_adds_consolidators_and_shares_one_memory():
    r = compose(["ewc", ("si", {"c": 2.0}), "er"])
    assert r.name == "ewc+si+er"
    assert [type(c) for c in r.consolidators] == [EWC, SI] and r.consolidators[1].c == 2.0
    assert isinstance(r.memory, Reservoir) and r.review.name == "replay"
    both = compose({"agem": {"memory_size": 100}, "er": {"memory_size": 100}})
    assert both.memory.capacity == 100 and both.consolidators[0].name == "agem"


def test_compose_overrides_and_extras():
    mem = ClassBalanced(capacity=64)
    review = SCHEDULES.get("replay")(0.3)
    curriculum = SCHEDULES.get("uniform")()
    r = compose(["der", "er"], memory=mem, review=review, curriculum=curriculum, name="mine")
    assert r.memory is mem and r.review is review and r.curriculum is curriculum and r.name == "mine"
    assert compose(["gdumb", "lwf"]).pool == "memory" and compose(["gdumb", "lwf"]).reinit


def test_compose_conflicts_name_the_strategies():
    with pytest.raises(ConfigError, match="'joint' \\(pool joint\\) and 'cumulative' \\(pool cumulative\\)"):
        compose(["joint", "cumulative"])
    with pytest.raises(ConfigError, match="'er' and 'der'.*different replay memories"):
        compose([("er", {"memory_size": 200}), ("der", {"memory_size": 500})])
    with pytest.raises(ConfigError, match="'er' and 'gdumb'.*different replay memories"):
        compose(["er", "gdumb"])  # reservoir vs class-balanced
    with pytest.raises(ConfigError, match="'ewc' is listed more than once"):
        compose(["ewc", "ewc"])
    with pytest.raises(ConfigError, match="no strategy given"):
        compose([])
    with pytest.raises(ConfigError, match="not understood"):
        compose([("er", 5)])
    with pytest.raises(ConfigError, match="agem need"):
        compose(["agem"], memory=Reservoir(capacity=0))


# ----------------------------------------------------------------------------- the evidence
@pytest.fixture(scope="module")
def evidence(digits):
    """Every strategy, 2 epochs per task, class-incremental split-digits, seed 0."""
    return {name: run(digits, name, epochs=2) for name in ALL}


def test_naive_forgets(evidence):
    assert final_average(evidence["naive"]) < 0.35
    # the last task is learned, the first ones are gone
    assert evidence["naive"].accuracy[-1][-1] > 0.8 and max(evidence["naive"].accuracy[-1][:3]) < 0.1


def test_experience_replay_with_200_samples_keeps_three_times_naive(evidence):
    assert build_strategy("er").memory.capacity == 200
    assert final_average(evidence["er"]) >= 3 * final_average(evidence["naive"])


def test_joint_training_is_the_best(evidence):
    joint = final_average(evidence["joint"])
    continual = {n: final_average(r) for n, r in evidence.items() if n not in KEEPS_ALL_DATA}
    assert joint >= max(continual.values()), continual
    # cumulative retrains on all data so far: in its last phase it sees exactly joint's data (and more steps),
    # so it can tie joint; it must not beat it by more than noise
    assert final_average(evidence["cumulative"]) <= joint + 0.02
    # and the memory-based methods beat the regularisers in class-IL, as in the literature
    assert min(final_average(evidence[n]) for n in ("er", "der++", "gdumb")) > final_average(evidence["ewc"])


def test_every_strategy_gives_a_full_finite_matrix(evidence):
    for name, r in evidence.items():
        assert r.complete, name
        assert all(len(row) == 5 for row in r.accuracy), name
        assert all(math.isfinite(a) and 0.0 <= a <= 1.0 for row in r.accuracy for a in row), name


def test_same_seed_same_numbers(digits, evidence):
    for name in ("er", "der++"):
        again = run(digits, name, epochs=2)
        assert again.accuracy == evidence[name].accuracy, name


@pytest.mark.parametrize("name", ALL)
def test_each_strategy_runs_one_epoch(digits, name):
    r = run(digits, name, epochs=1, seed=1)
    assert r.complete and len(r.accuracy) == (1 if name == "joint" else 5)
    assert all(math.isfinite(a) for row in r.accuracy for a in row)
    assert np.mean(r.accuracy[-1]) > 0.15  # at least the last task is learned


def test_composed_strategy_runs(digits):
    seed_everything(0)
    model = build_model("mlp", digits, hidden=[64])
    recipe = compose(["lwf", ("er", {"memory_size": 100})])
    r = train_stream(digits, model, recipe, TrainConfig(epochs=1, batch_size=32, lr=0.05, momentum=0.9,
                                                        device="cpu", log_every=0))
    assert r.complete and final_average(r) > 0.4


@pytest.mark.parametrize("name", ["er", "ewc", "online-ewc", "si", "lwf", "agem", "der++", "hft", "gdumb"])
def test_resuming_mid_task_gives_the_same_numbers(digits, name):
    """Memory and consolidator state survive a checkpoint: a run resumed in the middle of task 2
    (with a differently initialised model object) ends with the uninterrupted run's matrix."""
    import io

    import torch

    cfg = dict(epochs=1, batch_size=32, lr=0.05, momentum=0.9, device="cpu", seed=0, checkpoint_every=4,
               log_every=0)
    saved: list[bytes] = []

    def checkpointer(state):
        buf = io.BytesIO()
        torch.save(state, buf)
        saved.append(buf.getvalue())

    seed_everything(0)
    full = train_stream(digits, build_model("mlp", digits, hidden=[64]), build_strategy(name), TrainConfig(**cfg),
                        checkpointer=checkpointer)
    states = [torch.load(io.BytesIO(b), weights_only=False) for b in saved]
    mid = next(s for s in states if s["phase"] == 2 and s["step"] > 0)
    seed_everything(123)
    resumed = train_stream(digits, build_model("mlp", digits, hidden=[64]), build_strategy(name),
                           TrainConfig(**cfg), resume=mid)
    assert resumed.accuracy == full.accuracy
