"""No method silently does nothing: a consolidator that should act gets a gradient, under every driver;
a penalty without a gradient path or a memory without the method's extras stops the run with a message."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from lifelong.consolidation.registry import CONSOLIDATORS  # noqa: E402
from lifelong.consolidation.base import Consolidator  # noqa: E402
from lifelong.engine import Recipe, TrainConfig, seed_everything, train_stream  # noqa: E402
from lifelong.errors import TrainingError  # noqa: E402
from lifelong.memory import BUFFERS  # noqa: E402
from lifelong.models import build_model  # noqa: E402
from test_engine_loop import blobs  # noqa: E402

PENALTIES = ["ewc", "online-ewc", "l2", "si", "lwf", "der", "der++"]


class GradProbe(Consolidator):
    """Records, at the third step of task 2, the gradient norm the other consolidators' penalties give
    (at a task's first step the weights still equal the anchors, so quadratic penalties have zero gradient)."""

    name = "probe"

    def __init__(self, others):
        self.others, self.norms = others, {}

    def penalty(self, ctx, batch, out):
        if ctx.step == 2 and ctx.task_index == 1:
            total = sum(c.penalty(ctx, batch, out) for c in self.others)
            grads = torch.autograd.grad(total, [p for p in ctx.model.parameters() if p.requires_grad],
                                        retain_graph=True, allow_unused=True)
            self.norms[ctx.task_index] = float(sum(g.norm() ** 2 for g in grads if g is not None) ** 0.5)
        return None


@pytest.mark.parametrize("name", PENALTIES)
def test_every_penalty_reaches_the_weights_from_the_second_task(name):
    s = blobs(n_tasks=2)
    params = {"lwf": {"alpha": 1.0}, "si": {"c": 1.0}}.get(name, {})
    c = CONSOLIDATORS.get(name)(**params)
    probe = GradProbe([c])
    memory = BUFFERS.get("reservoir")(capacity=30) if c.needs_memory else None
    seed_everything(0)
    model = build_model("mlp", s, hidden=[16])
    cfg = TrainConfig(steps=4, batch_size=16, lr=0.1, device="cpu")
    train_stream(s, model, Recipe(name=name, consolidators=[c, probe], memory=memory), cfg)
    assert type(c).expects_penalty is not Consolidator.expects_penalty  # it declares when it acts
    assert probe.norms[1] > 0, f"{name}: its penalty gave no gradient at task 2"


def test_a_penalty_without_gradient_stops_with_the_method_and_driver_named():
    class Broken(Consolidator):
        name = "broken"

        def expects_penalty(self, ctx):
            return ctx.task_index > 0

        def penalty(self, ctx, batch, out):
            with torch.no_grad():
                return sum(p.sum() for p in ctx.model.parameters())

    s = blobs(n_tasks=2)
    seed_everything(0)
    with pytest.raises(TrainingError, match=r"consolidator 'broken' should act in task 't1' \(#1\) under "
                                            r"lifelong's loop, but its penalty has no gradient path") as info:
        train_stream(s, build_model("mlp", s, hidden=[8]), Recipe(consolidators=[Broken()]),
                     TrainConfig(steps=2, device="cpu"))
    assert len(info.value.result.accuracy) == 1  # the first task's row was kept


def test_memory_without_the_methods_extras_is_refused():
    class NoLogits(CONSOLIDATORS.get("der")):
        def memory_extras(self, ctx, examples):
            return {}

    s = blobs(n_tasks=2)
    seed_everything(0)
    with pytest.raises(TrainingError, match="replay memory holds no logits"):
        train_stream(s, build_model("mlp", s, hidden=[8]), Recipe(consolidators=[NoLogits()],
                     memory=BUFFERS.get("reservoir")(capacity=10)), TrainConfig(steps=2, device="cpu"))


def test_lwf_teacher_is_independent_of_a_patched_forward():
    """accelerate/TRL replace model.forward by a closure over the model; the teacher must not run the student."""
    from lifelong.consolidation._util import frozen_copy

    model = torch.nn.Linear(3, 2)
    original = model.forward
    model.forward = lambda x: original(x) * 1.0  # a closure over the student, as accelerate's autocast wrapper is
    teacher = frozen_copy(model)
    x = torch.randn(4, 3)
    before = teacher(x).clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    assert torch.equal(teacher(x), before)  # the student changed, the teacher did not
    assert not any(p.requires_grad for p in teacher.parameters()) and not teacher.training
