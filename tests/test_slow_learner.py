"""The slow learner: per-module learning-rate multipliers and frozen patterns, through engine/optim.py."""

from __future__ import annotations

import types

import pytest
import torch
from torch import nn

from lifelong.consolidation import CONSOLIDATORS, SlowLearner
from lifelong.consolidation.base import Consolidator
from lifelong.engine import TrainConfig
from lifelong.engine.optim import build_param_groups, make_optimizer
from lifelong.errors import ConfigError, LifelongError
from lifelong.strategies import build_strategy


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(5, 3)
        self.backbone = nn.Linear(3, 3)
        self.head = nn.Linear(3, 2)

    def forward(self, idx):
        return self.head(self.backbone(self.embed(idx).mean(1)))


def prepared(slow: SlowLearner) -> Net:
    torch.manual_seed(0)
    net = Net()
    slow.before_task(types.SimpleNamespace(model=net))
    return net


def test_groups_get_the_multiplied_rates_and_frozen_patterns_are_left_out():
    slow = SlowLearner({"backbone.*": 0.1, "head.*": 1.0}, freeze=["embed"])
    net = prepared(slow)
    opt = make_optimizer(net, TrainConfig(lr=0.5, optimizer="sgd"), [slow])
    groups = [(g["lr"], {id(p) for p in g["params"]}) for g in opt.param_groups]
    assert len(groups) == 2
    assert groups[0][0] == pytest.approx(0.05) and groups[0][1] == {id(net.backbone.weight), id(net.backbone.bias)}
    assert groups[1][0] == 0.5 and groups[1][1] == {id(net.head.weight), id(net.head.bias)}
    assert [g["lr_multiplier"] for g in opt.param_groups] == [0.1, 1.0]
    assert not net.embed.weight.requires_grad


def test_an_sgd_step_moves_the_backbone_ten_times_less_and_the_frozen_embedding_not_at_all():
    slow = SlowLearner({"backbone": 0.1, "head": 1.0}, freeze=["embed"])
    net = prepared(slow)
    opt = make_optimizer(net, TrainConfig(lr=0.1, optimizer="sgd"), [slow])
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    # the same gradient for every parameter, so the step sizes compare the rates alone
    for p in net.parameters():
        if p.requires_grad:
            p.grad = torch.ones_like(p)
    opt.step()
    moved = {n: (p.detach() - before[n]).abs().max().item() for n, p in net.named_parameters()}
    assert moved["head.weight"] == pytest.approx(0.1)
    assert moved["backbone.weight"] == pytest.approx(0.01)
    assert moved["head.weight"] / moved["backbone.weight"] == pytest.approx(10.0)
    assert moved["embed.weight"] == 0.0


def test_real_gradient_step_and_training_through_the_loss():
    slow = SlowLearner({"backbone": 0.1}, freeze=["embed"])  # head: the default factor 1
    net = prepared(slow)
    opt = make_optimizer(net, TrainConfig(lr=0.1, optimizer="sgd"), [slow])
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    loss = nn.functional.cross_entropy(net(torch.tensor([[1, 2], [3, 4]])), torch.tensor([0, 1]))
    loss.backward()
    assert net.embed.weight.grad is None  # frozen: no gradient at all
    opt.step()
    assert torch.equal(net.embed.weight, before["embed.weight"])
    for n in ("backbone.weight", "head.weight"):
        assert not torch.equal(net.get_parameter(n), before[n])


def test_zero_multiplier_freezes_and_first_matching_pattern_wins():
    slow = SlowLearner({"backbone.bias": 0.0, "backbone": 0.5}, default=2.0)
    net = prepared(slow)
    assert not net.backbone.bias.requires_grad and net.backbone.weight.requires_grad
    assert slow.multiplier("backbone.weight") == 0.5 and slow.multiplier("head.bias") == 2.0
    groups = build_param_groups(net, [slow], 1.0)
    assert sorted(g["lr"] for g in groups) == [0.5, 2.0]


def test_without_groups_one_group_of_all_trainable_parameters():
    net = Net()
    net.embed.weight.requires_grad_(False)
    groups = build_param_groups(net, [Consolidator()], 0.3)
    assert len(groups) == 1 and groups[0]["lr"] == 0.3 and len(groups[0]["params"]) == 4
    for name in ("adam", "adamw"):
        assert type(make_optimizer(net, TrainConfig(lr=0.3, optimizer=name))).__name__.lower() == name


def test_errors():
    with pytest.raises(ConfigError, match="matches no parameter"):
        prepared(SlowLearner({"encoder": 0.1}))
    with pytest.raises(ConfigError, match="lr_multipliers"):
        SlowLearner({"backbone": -1})
    with pytest.raises(ConfigError, match="map module patterns"):
        SlowLearner(["backbone"])
    a, b = SlowLearner(), SlowLearner()
    net = prepared(a)
    with pytest.raises(ConfigError, match="both set optimiser parameter groups"):
        build_param_groups(net, [a, b], 0.1)
    for p in net.parameters():
        p.requires_grad_(False)
    with pytest.raises(LifelongError, match="no trainable parameters"):
        build_param_groups(net, [a], 0.1)


def test_registered_as_a_consolidator_and_a_strategy():
    assert CONSOLIDATORS.get("slow-learner") is SlowLearner
    recipe = build_strategy("slow-learner", {"lr_multipliers": {"backbone": 0.1}, "freeze": ["embed"]})
    assert recipe.consolidators[0].lr_multipliers == {"backbone": 0.1}
    assert recipe.consolidators[0].state_dict() == {}
