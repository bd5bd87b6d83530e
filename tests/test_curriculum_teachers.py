"""Teachers on synthetic feedback: hand-computed rules and qualitative behaviour."""

import math

import pytest
import torch

from lifelong.curriculum.base import Feedback, PoolView
from lifelong.curriculum.teachers.alp_gmm import ALPGMMTeacher, component_group_probs
from lifelong.curriculum.teachers.learning_progress import LearningProgressTeacher, proportional, window_slope
from lifelong.curriculum.teachers.mastering_rate import MasteringRateTeacher
from lifelong.curriculum.teachers.mixture import MixtureTeacher
from lifelong.curriculum.teachers.sequential import SequentialTeacher
from lifelong.curriculum.teachers.ucb import UCBTeacher, ucb_probs
from lifelong.errors import ConfigError


def pool(groups=3, per=10, names=None, info=None):
    g = torch.arange(groups).repeat_interleave(per)
    return PoolView(groups * per, g, groups, None, names or [f"t{i}" for i in range(groups)], info or {})


def step_feedback(step, accs, per=8):
    """Per-step feedback with ``per`` items of each group, a share ``accs[g]`` of them correct."""
    groups, correct = [], []
    for g, a in enumerate(accs):
        k = int(round(a * per))
        groups += [g] * per
        correct += [True] * k + [False] * (per - k)
    n = len(groups)
    return Feedback(step, torch.arange(n), torch.zeros(n), torch.tensor(correct), torch.tensor(groups))


def rising(step, total):
    return min(1.0, 0.1 + 0.8 * step / total)


def test_rules_hand_values():
    assert window_slope([0, 1, 2], [1, 3, 5]) == pytest.approx(2.0)
    assert window_slope([0], [1]) == 0.0
    p = proportional(torch.tensor([1.0, 3.0, 0.0]), torch.ones(3, dtype=torch.bool), 0.1)
    assert p.tolist() == pytest.approx([0.1 / 3 + 0.225, 0.1 / 3 + 0.675, 0.1 / 3])
    # UCB: values [1, 0], pulls [1, 3], c = 1, T = 1: bonuses sqrt(2 ln 4 / n)
    p = ucb_probs(torch.tensor([1.0, 0.0]), torch.tensor([1, 3]), torch.ones(2, dtype=torch.bool), 1.0, 1.0)
    assert float(p[0]) == pytest.approx(0.8460249096154127)
    p = ucb_probs(torch.tensor([1.0, 0.0]), torch.tensor([2, 0]), torch.ones(2, dtype=torch.bool), 1.0, 1.0)
    assert p.tolist() == [0.0, 1.0]  # unpulled group first


def test_item_weights_follow_group_probabilities():
    t = MixtureTeacher(weights=[1, 3])
    p = PoolView(6, torch.tensor([0, 0, 1, 1, 1, 1]), 2, None, ["a", "b"])
    t.start(p, 10, 0)
    assert t.weights(0).tolist() == pytest.approx([0.125, 0.125, 0.1875, 0.1875, 0.1875, 0.1875])
    assert t.group_probabilities(0).tolist() == pytest.approx([0.25, 0.75])
    assert t.log() == pytest.approx({"p/a": 0.25, "p/b": 0.75})
    t = MixtureTeacher(weights={"b": 1})
    t.start(p, 10, 0)
    assert t.group_probabilities(0).tolist() == pytest.approx([0.0, 1.0])
    u = MixtureTeacher()
    u.start(p, 10, 0)
    assert u.group_probabilities(0).tolist() == pytest.approx([0.5, 0.5])  # uniform over groups, not items
    with pytest.raises(ConfigError, match="one weight per group"):
        MixtureTeacher(weights=[1, 2, 3]).start(p, 10, 0)
    with pytest.raises(ConfigError, match="no such group"):
        MixtureTeacher(weights={"zzz": 1}).start(p, 10, 0)


def test_sequential_equal_shares_and_threshold():
    t = SequentialTeacher()
    t.start(pool(), 30, 0)
    assert [int(torch.argmax(t.group_probabilities(s))) for s in (0, 9, 10, 29)] == [0, 0, 1, 2]
    t = SequentialTeacher(order=["t2", "t0", "t1"], threshold=0.75, episode=8)
    t.start(pool(), 30, 0)
    assert int(torch.argmax(t.group_probabilities(0))) == 2
    t.update(step_feedback(1, [0.0, 0.0, 0.5]))
    assert int(torch.argmax(t.group_probabilities(1))) == 2
    t.update(step_feedback(2, [0.0, 0.0, 0.875]))
    assert int(torch.argmax(t.group_probabilities(2))) == 0
    with pytest.raises(ConfigError, match="not a group"):
        SequentialTeacher(order=["nope"]).start(pool(), 30, 0)


@pytest.mark.parametrize("variant", ["window", "online", "exp3", "epsilon-greedy"])
def test_learning_progress_prefers_the_improving_group(variant):
    t = LearningProgressTeacher(variant=variant, episode=8, window=10)
    t.start(pool(), 200, seed=0)
    share = torch.zeros(3)
    for s in range(1, 201):
        t.update(step_feedback(s, [rising(s, 200), 0.5, 0.875]))
        if s > 50:
            share += t.group_probabilities(s).double().float()
    share /= share.sum()
    assert share[0] > 0.5, (variant, share)
    assert share[0] > 2 * share[1] and share[0] > 2 * share[2], (variant, share)


def test_learning_progress_validation():
    with pytest.raises(ConfigError, match="variant"):
        LearningProgressTeacher(variant="thompson")
    with pytest.raises(ConfigError, match="slow"):
        LearningProgressTeacher(fast=0.1, slow=0.2)
    with pytest.raises(ConfigError, match="signal"):
        LearningProgressTeacher(signal="reward")


def test_mastering_rate_unlocks_and_retires():
    t = MasteringRateTeacher(threshold=0.9, eps=0.1, episode=8, fast=1.0, slow=0.5)
    t.start(pool(), 100, 0)
    p = t.group_probabilities(0)
    assert p.tolist() == pytest.approx([1.0, 0.0, 0.0])       # only the chain's first group is unlocked
    t.update(step_feedback(1, [0.5, 0.0, 0.0]))
    unlocked, mastered = t.status()
    assert unlocked.tolist() == [True, False, False] and not bool(mastered.any())
    t.update(step_feedback(2, [1.0, 0.0, 0.0]))                 # t0 mastered (fast = 1: M = 1)
    unlocked, mastered = t.status()
    assert unlocked.tolist() == [True, True, False] and mastered.tolist() == [True, False, False]
    p = t.group_probabilities(2)
    # t1 is the only active group: (1 - eps) + eps / 2 unlocked groups; t0 retired keeps eps / 2
    assert p.tolist() == pytest.approx([0.05, 0.95, 0.0])
    assert t.log()["mastery/t0"] == pytest.approx(1.0)


def test_mastering_rate_prerequisite_graph():
    t = MasteringRateTeacher(prerequisites={"t2": ["t0", "t1"]}, episode=8, fast=1.0, slow=0.5, eps=0.0)
    t.start(pool(), 100, 0)
    assert t.status()[0].tolist() == [True, True, False]
    t.update(step_feedback(1, [1.0, 0.5, 0.0]))
    assert t.status()[0].tolist() == [True, True, False]
    t.update(step_feedback(2, [1.0, 1.0, 0.0]))
    assert t.status()[0].tolist() == [True, True, True]
    assert t.group_probabilities(2).tolist() == pytest.approx([0.0, 0.0, 1.0])
    with pytest.raises(ConfigError, match="not both"):
        MasteringRateTeacher(order=["t0"], prerequisites={"t1": ["t0"]})


def test_alp_gmm_component_probs_and_preference():
    params = torch.tensor([[0.0], [1.0], [2.0]]).numpy()
    p = component_group_probs(params, means=torch.tensor([[0.0]]).numpy(), variances=torch.tensor([[1.0]]).numpy(),
                              comp_weights=torch.tensor([1.0]).numpy())
    e = [1.0, math.exp(-0.5), math.exp(-2.0)]
    assert p.tolist() == pytest.approx([v / sum(e) for v in e])
    t = ALPGMMTeacher(episode=8, fit_every=8, eps=0.2)
    t.start(pool(info={"params": [[0.0], [0.5], [1.0]]}), 300, seed=1)
    share = torch.zeros(3)
    for s in range(1, 301):
        t.update(step_feedback(s, [rising(s, 300) if s % 2 else rising(s, 300) - 0.125, 0.5, 0.875]))
        if s > 60:
            share += t.group_probabilities(s)
    share /= share.sum()
    assert share[0] > share[1] and share[0] > share[2], share
    assert t.fits > 0


def test_alp_gmm_bad_params():
    t = ALPGMMTeacher()
    with pytest.raises(ConfigError, match="params"):
        t.start(pool(info={"params": [[0.0], None, [1.0]]}), 10, 0)


def test_ucb_prefers_the_group_whose_loss_moves():
    t = UCBTeacher(episode=8, c=0.2, temperature=0.1)
    t.start(pool(2), 200, 0)
    for s in range(1, 201):
        losses = torch.tensor([2.0 * (1 - s / 200)] * 8 + [1.0] * 8)
        groups = torch.tensor([0] * 8 + [1] * 8)
        t.update(Feedback(s, torch.arange(16), losses, None, groups))
    p = t.group_probabilities(200)
    assert float(p[0]) > 0.8, p
    assert t.log()["value/t0"] == pytest.approx(1.0)
