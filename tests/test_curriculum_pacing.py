"""Pacing functions and within-task data schedules against hand-computed values."""


import pytest
import torch

from lifelong.curriculum import SCHEDULES
from lifelong.curriculum.annealed import AnnealedReweighting, annealed_weights
from lifelong.curriculum.base import Feedback, PoolView
from lifelong.curriculum.cyclical import CyclicalCurriculum
from lifelong.curriculum.data_dropout import ProgressiveDataDropout
from lifelong.curriculum.difficulty_filter import DifficultyFilter
from lifelong.curriculum.pacing import (AntiCurriculum, GeometricPacing, LinearPacing, RandomOrderPacing,
                                        RootPacing, StepPacing, pace_geometric, pace_linear, pace_root, pace_step)
from lifelong.curriculum.self_paced import SelfPaced, spl_weights
from lifelong.errors import ConfigError
from lifelong.registry import build


def pool10():
    # item i has difficulty 9 - i: item 9 is the easiest, item 0 the hardest
    return PoolView.single(10, torch.arange(9, -1, -1).float())


def available(w):
    return sorted(torch.nonzero(w).flatten().tolist())


def test_pacing_functions_hand_values():
    assert pace_linear(0.0, 0.2) == pytest.approx(0.2)
    assert pace_linear(0.5, 0.2) == pytest.approx(0.6)
    assert pace_linear(1.0, 0.2) == pytest.approx(1.0)
    assert pace_root(0.5, 0.2, 2) == pytest.approx(0.7211102550927979)  # sqrt(0.04 + 0.96 * 0.5)
    assert pace_root(0.0, 0.2, 2) == pytest.approx(0.2)
    assert pace_root(1.0, 0.2, 3) == pytest.approx(1.0)
    assert pace_geometric(0.0, 0.25) == pytest.approx(0.25)
    assert pace_geometric(0.5, 0.25) == pytest.approx(0.5)   # 0.25 ** 0.5
    assert pace_geometric(1.0, 0.25) == pytest.approx(1.0)
    # baby steps, 5 buckets: a new bucket every quarter of the way
    assert [pace_step(s, 0.0, 5) for s in (0.0, 0.24, 0.25, 0.5, 0.99, 1.0)] == \
        pytest.approx([0.2, 0.2, 0.4, 0.6, 0.8, 1.0])
    assert pace_step(0.0, 0.5, 5) == pytest.approx(0.5)  # start acts as a floor


def test_linear_pacing_exposes_easiest_first():
    s = LinearPacing(start=0.2, full_at=10)
    s.start(pool10(), total_steps=20, seed=0)
    assert available(s.weights(0)) == [8, 9]                  # 2 easiest of 10
    assert available(s.weights(5)) == [4, 5, 6, 7, 8, 9]      # 0.2 + 0.8 * 0.5 = 0.6
    assert available(s.weights(10)) == list(range(10))
    assert available(s.weights(15)) == list(range(10))
    assert s.log()["available_fraction"] == pytest.approx(1.0)


def test_root_geometric_step_counts():
    for cls, kw, expected in [(RootPacing, {"p": 2}, [2, 8, 10]),       # 0.2, 0.721 -> 8, 1
                              (GeometricPacing, {}, [2, 5, 10]),        # 0.2, sqrt(0.2)=0.447 -> 5
                              (StepPacing, {"buckets": 5}, [2, 6, 10])]:  # 0.2, 0.6, 1
        s = cls(full_at=10, **kw)
        s.start(pool10(), 20, 0)
        assert [len(available(s.weights(t))) for t in (0, 5, 10)] == expected, cls.name


def test_anti_and_random_order():
    a = AntiCurriculum(start=0.2, full_at=10)
    a.start(pool10(), 20, 0)
    assert available(a.weights(0)) == [0, 1]    # the two hardest
    r = RandomOrderPacing(start=0.3, full_at=10)
    assert not r.needs_difficulty
    r.start(PoolView.single(10), 20, seed=5)   # no difficulty needed
    first = available(r.weights(0))
    assert len(first) == 3
    r2 = RandomOrderPacing(start=0.3, full_at=10)
    r2.start(PoolView.single(10), 20, seed=5)
    assert available(r2.weights(0)) == first
    r3 = RandomOrderPacing(start=0.3, full_at=10)
    r3.start(PoolView.single(10), 20, seed=6)
    assert len(available(r3.weights(0))) == 3


def test_ties_broken_by_seed_and_missing_difficulty_is_a_config_error():
    s = LinearPacing(start=0.5, full_at=10)
    s.start(PoolView.single(4, torch.tensor([0.0, 0.0, 1.0, 1.0])), 20, 0)
    assert available(s.weights(0)) == [0, 1]
    s = LinearPacing()
    s.start(PoolView.single(4), 20, 0)
    with pytest.raises(ConfigError, match="difficulty"):
        s.weights(0)


def test_warmup_switches_to_uniform_epochs():
    s = LinearPacing(start=0.2, warmup=4)
    s.start(pool10(), 20, 0)
    assert not s.uniform
    assert len(available(s.weights(2))) == 6   # 0.2 + 0.8 * 0.5
    s.weights(4)
    assert s.uniform
    s.start(pool10(), 20, 0)
    assert not s.uniform


def test_refresh_difficulty_reorders():
    s = LinearPacing(start=0.2, full_at=10)
    s.start(pool10(), 20, 0)
    assert available(s.weights(0)) == [8, 9]
    s.refresh_difficulty(torch.arange(10).float())
    assert available(s.weights(0)) == [0, 1]


def test_cyclical_hand_values():
    s = CyclicalCurriculum(period=0.5, curriculum_share=0.5, start=0.2)
    s.start(pool10(), total_steps=100, seed=0)   # cycles of 50 steps, 25 paced
    assert [s.fraction(t) for t in (0, 10, 30, 49, 50, 60)] == pytest.approx([0.2, 0.52, 1.0, 1.0, 0.2, 0.52])
    assert len(available(s.weights(10))) == 6   # ceil(0.52 * 10)
    assert len(available(s.weights(30))) == 10


def test_annealed_hand_values():
    w = annealed_weights(torch.tensor([0.0, 1.0, 2.0]), 0.0, 0.1)
    assert w.tolist() == pytest.approx([1.0, 0.55, 0.1])
    w = annealed_weights(torch.tensor([0.0, 1.0, 2.0]), 0.5, 0.1)
    assert w.tolist() == pytest.approx([1.0, 0.775, 0.55])
    s = AnnealedReweighting(min_weight=0.1, anneal_at=10)
    s.start(PoolView.single(3, torch.tensor([0.0, 1.0, 2.0])), 20, 0)
    assert s.weights(5).tolist() == pytest.approx([1.0, 0.775, 0.55])
    assert s.weights(12).tolist() == pytest.approx([1.0, 1.0, 1.0])


def test_self_paced_weighting_rules():
    losses = torch.tensor([0.2, 0.5, 1.0, 2.0])
    assert spl_weights(losses, 1.0, "hard").tolist() == [1.0, 1.0, 0.0, 0.0]
    assert spl_weights(losses, 1.0, "linear").tolist() == pytest.approx([0.8, 0.5, 0.0, 0.0])
    # logarithmic, lam = 0.5, z = 0.5: log(l + 0.5) / log(0.5)
    assert spl_weights(torch.tensor([0.0, 0.1, 0.2, 0.5]), 0.5, "logarithmic").tolist() == \
        pytest.approx([1.0, 0.7369655941662062, 0.5145731728297583, 0.0])
    # mixture, lam = 1, lam2 = 0.5, z = 1: 1 below 0.5, 1/l - 1 between, 0 above 1
    assert spl_weights(torch.tensor([0.2, 0.5, 0.8, 1.0, 2.0]), 1.0, "mixture", 0.5).tolist() == \
        pytest.approx([1.0, 1.0, 0.25, 0.0, 0.0])


def test_self_paced_threshold_grows_with_feedback():
    s = SelfPaced(scheme="hard", lam=1.0, growth=2.0, grow_every=10, min_fraction=0.25)
    s.start(PoolView.single(4), 40, 0)
    assert s.weights(0).tolist() == [1.0] * 4            # unmeasured items count as easy
    s.update(Feedback(1, torch.arange(4), torch.tensor([0.2, 0.5, 1.5, 3.0])))
    assert s.weights(1).tolist() == [1.0, 1.0, 0.0, 0.0]
    assert s.threshold(25) == pytest.approx(4.0)         # 1 * 2 ** 2
    assert s.weights(10).tolist() == [1.0, 1.0, 1.0, 0.0]  # lam = 2
    s.update(Feedback(2, torch.arange(4), torch.full((4,), 9.0)))
    w = s.weights(11)
    assert int((w > 0).sum()) == 1                        # min_fraction keeps one item drawable


def test_self_paced_validation():
    with pytest.raises(ConfigError, match="logarithmic"):
        SelfPaced(scheme="logarithmic", lam=1.5)
    with pytest.raises(ConfigError, match="scheme"):
        SelfPaced(scheme="soft")


def test_data_dropout_drops_correct_items_per_epoch():
    s = ProgressiveDataDropout(patience=1, revision=10)
    s.start(PoolView.single(4), 20, 0)
    s.update(Feedback(1, torch.arange(4), None, torch.tensor([True, False, True, False])))
    assert s.weights(1).tolist() == [0.0, 1.0, 0.0, 1.0]
    s.update(Feedback(2, torch.tensor([1, 3]), None, torch.tensor([True, False])))
    assert s.weights(2).tolist() == [0.0, 0.0, 0.0, 1.0]
    s.update(Feedback(3, torch.tensor([3]), None, torch.tensor([True])))
    assert s.weights(3).tolist() == [1.0] * 4          # everything mastered: all come back
    s.update(Feedback(4, torch.arange(4), None, torch.tensor([True, True, False, False])))
    assert s.weights(9).tolist() == [0.0, 0.0, 1.0, 1.0]
    assert s.weights(10).tolist() == [1.0] * 4         # revision


def test_difficulty_filter_keeps_intermediate_items():
    s = DifficultyFilter(low=0.2, high=0.8, decay=0.5, min_tries=1.5, outside_weight=0.05)
    s.start(PoolView.single(4), 20, 0)
    s.update(Feedback(1, torch.tensor([0, 1, 2]), None, torch.tensor([True, True, True])))
    s.update(Feedback(2, torch.tensor([0, 1]), None, torch.tensor([True, False])))
    # item 0: hits 1.5 / tries 1.5 = 1 -> outside; item 1: 0.5 / 1.5 = 1/3 -> kept;
    # item 2: one draw (tries 1 < 1.5) -> not yet judged; item 3: never drawn
    assert s.success_rate()[:2].tolist() == pytest.approx([1.0, 1 / 3])
    assert s.weights(2).tolist() == pytest.approx([0.05, 1.0, 1.0, 1.0])
    with pytest.raises(ConfigError, match="low"):
        DifficultyFilter(low=0.9, high=0.1)


def test_linear_may_start_from_a_single_item():
    s = build(SCHEDULES, "linear", {"start": 0, "full_at": 10})
    s.start(pool10(), 20, 0)
    assert available(s.weights(0)) == [9]


@pytest.mark.parametrize("name,params", [("geometric", {"start": 0}),
                                         ("root", {"p": -1}), ("step", {"buckets": 1}),
                                         ("linear", {"full_at": 2.5}), ("anti", {"pacing": "cubic"}),
                                         ("annealed", {"min_weight": 0}), ("cyclical", {"curriculum_share": 0}),
                                         ("linear", {"speed": 1})])
def test_bad_parameters_are_config_errors(name, params):
    with pytest.raises(ConfigError):
        build(SCHEDULES, name, params)
