"""Per-class buffers balance by task in domain-incremental streams (key='auto')."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from lifelong.data import Examples
from lifelong.memory import BUFFERS
from lifelong.memory._balance import balance_key


def test_auto_key_follows_the_scenario():
    assert balance_key("auto", SimpleNamespace(stream=SimpleNamespace(scenario="domain"))) == "task"
    assert balance_key("auto", SimpleNamespace(stream=SimpleNamespace(scenario="class"))) == "y"
    assert balance_key("auto", None) == "y"
    assert balance_key("y", SimpleNamespace(stream=SimpleNamespace(scenario="domain"))) == "y"


@pytest.mark.parametrize("policy", ["class-balanced", "herding"])
def test_domain_streams_keep_every_task_equally(policy):
    model = torch.nn.Linear(4, 2)
    ctx = SimpleNamespace(stream=SimpleNamespace(scenario="domain"), model=model, device=torch.device("cpu"),
                          objective=None)
    mem = BUFFERS.get(policy)(capacity=60, seed=0)
    g = torch.Generator().manual_seed(0)
    for t in range(6):  # six tasks, the same two classes in each
        data = Examples(x=torch.randn(100, 4, generator=g), y=torch.arange(100) % 2,
                        task=torch.full((100,), t))
        mem.add(data, ctx)
    counts = mem.task_counts(6).tolist()
    assert counts == [10] * 6  # 60 slots shared equally by the six tasks
    ys = mem.examples["y"]
    assert 20 <= int((ys == 0).sum()) <= 40  # and both classes stay represented
