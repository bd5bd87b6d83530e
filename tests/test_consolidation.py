"""Consolidators on tiny, hand-checkable cases: the math of each method and its hooks."""

from __future__ import annotations

import math
import types

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lifelong.consolidation import (AGEM, CONSOLIDATORS, DER, EWC, HFT, L2, SI, DERPlusPlus, Freeze, LwF,
                                    OnlineEWC)
from lifelong.consolidation._util import empirical_fisher
from lifelong.consolidation.agem import project
from lifelong.consolidation.der import masked_mse
from lifelong.data import Examples, Stream, Task
from lifelong.engine import Batch, ClassificationObjective, Context, TrainConfig
from lifelong.errors import ConfigError
from lifelong.memory import Reservoir
from lifelong.models import build_model
from lifelong.registry import build


def blobs(scenario: str = "class", n: int = 24, dim: int = 4) -> Stream:
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(4, dim, generator=g) * 3
    tasks = []
    for t in range(2):
        cls = (2 * t, 2 * t + 1)
        y = torch.tensor(cls).repeat_interleave(n // 2)
        x = centres[y] + torch.randn(len(y), dim, generator=g)
        tasks.append(Task(f"t{t}", Examples(x=x, y=y), Examples(x=x[:8], y=y[:8]), cls))
    return Stream("blobs", tasks, scenario, 4, (dim,))


def make_ctx(stream: Stream, task: int = 0, model: nn.Module | None = None, memory=None) -> Context:
    torch.manual_seed(0)
    model = model or build_model("mlp", stream, hidden=[8])
    objective = ClassificationObjective(stream)
    seen = sorted({c for t in stream.tasks[: task + 1] for c in t.classes})
    objective.begin_task(stream, stream[task], seen)
    model.adapt(seen)
    ctx = Context(model=model, stream=stream, task=stream[task], objective=objective,
                  config=TrainConfig(device="cpu", batch_size=8), device=torch.device("cpu"), memory=memory)
    ctx.task_index, ctx.seen_classes = task, seen
    return ctx


def move_to(ctx: Context, task: int) -> None:
    seen = sorted({c for t in ctx.stream.tasks[: task + 1] for c in t.classes})
    ctx.objective.begin_task(ctx.stream, ctx.stream[task], seen)
    ctx.model.adapt(seen)
    ctx.task, ctx.task_index, ctx.seen_classes = ctx.stream[task], task, seen


def batch_of(task: Task, n: int = 8) -> Batch:
    data = Examples(x=task.train["x"][:n], y=task.train["y"][:n], task=torch.full((n,), task.index))
    return Batch(data, n, torch.arange(n))


def perturb(model: nn.Module, scale: float = 0.1, seed: int = 1) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * scale)


def value(t: torch.Tensor) -> float:
    return float(t.detach())


class Scalar(nn.Module):
    """A one-parameter model for the quadratic examples."""

    def __init__(self, value: float):
        super().__init__()
        self.theta = nn.Parameter(torch.tensor([value]))


def test_registry_lists_every_method_and_checks_params():
    assert {"ewc", "online-ewc", "si", "l2", "lwf", "agem", "der", "der++", "hft", "freeze"} <= set(CONSOLIDATORS)
    with pytest.raises(ConfigError, match="has no parameter 'lam'"):
        build(CONSOLIDATORS, "ewc", {"lam": 1.0})
    for name, bad in [("ewc", {"lambda_": -1}), ("online-ewc", {"gamma": 1.5}), ("si", {"xi": 0}),
                      ("lwf", {"temperature": 0}), ("agem", {"sample_size": 0}), ("hft", {"fraction": 1.0}),
                      ("der++", {"beta": -1}), ("freeze", {"modules": []})]:
        with pytest.raises(ConfigError, match=name.split("+")[0]):
            build(CONSOLIDATORS, name, bad)


# ----------------------------------------------------------------------------- EWC family
def test_ewc_penalty_is_half_lambda_fisher_weighted_distance():
    model = Scalar(0.0)
    ctx = types.SimpleNamespace(model=model)
    ewc = EWC(lambda_=4.0)
    ewc.consolidate({"theta": torch.tensor([3.0])}, {"theta": torch.tensor([1.0])})
    with torch.no_grad():
        model.theta.fill_(2.0)
    assert value(ewc.penalty(ctx, None, None)) == pytest.approx(0.5 * 4.0 * 3.0 * (2.0 - 1.0) ** 2)
    # a second task: the merged quadratic equals the sum of both tasks' penalties, value and gradient
    ewc.consolidate({"theta": torch.tensor([0.5])}, {"theta": torch.tensor([-2.0])})
    for v in (2.0, -1.0, 0.3):
        with torch.no_grad():
            model.theta.fill_(v)
        model.theta.grad = None
        pen = ewc.penalty(ctx, None, None)
        pen.backward()
        expect = 0.5 * 4.0 * (3.0 * (v - 1.0) ** 2 + 0.5 * (v + 2.0) ** 2)
        assert value(pen) == pytest.approx(expect, rel=1e-5)
        assert float(model.theta.grad) == pytest.approx(4.0 * (3.0 * (v - 1.0) + 0.5 * (v + 2.0)), rel=1e-5)


def test_empirical_fisher_is_mean_squared_per_sample_gradient():
    stream = blobs("domain")
    lin = nn.Linear(4, 4)
    ctx = make_ctx(stream, model=build_model("mlp", stream, hidden=[8]))
    ctx.model = nn.Sequential(lin)
    data = Examples(x=stream[0].train["x"][:6], y=stream[0].train["y"][:6], task=torch.zeros(6, dtype=torch.long))
    fisher = empirical_fisher(ctx, data, batch_size=1)
    # closed form for softmax regression: dL/dW = (softmax(Wx+b) - onehot(y)) x^T, dL/db = softmax - onehot
    with torch.no_grad():
        err = F.softmax(lin(data["x"]), 1) - F.one_hot(data["y"], 4).float()
    gw = err[:, :, None] * data["x"][:, None, :]
    assert torch.allclose(fisher["0.weight"], (gw ** 2).mean(0), atol=1e-6)
    assert torch.allclose(fisher["0.bias"], (err ** 2).mean(0), atol=1e-6)


def test_ewc_after_task_on_a_real_model_anchors_at_the_end_weights():
    stream = blobs()
    ctx = make_ctx(stream)
    ewc = EWC(lambda_=10.0, samples=16)
    ewc.after_task(ctx)
    assert set(ewc.importance) == {n for n, p in ctx.model.named_parameters()}
    assert all(bool((f >= 0).all()) for f in ewc.importance.values())
    # the head rows of classes not seen yet get no importance
    assert float(ewc.importance["head.weight"][2:].abs().sum()) == 0.0
    assert value(ewc.penalty(ctx, None, None)) == pytest.approx(0.0, abs=1e-8)
    perturb(ctx.model)
    assert value(ewc.penalty(ctx, None, None)) > 0


def test_online_ewc_running_fisher_decays_old_importance():
    model = Scalar(0.0)
    ctx = types.SimpleNamespace(model=model)
    c = OnlineEWC(lambda_=2.0, gamma=0.5)
    c.accumulate({"theta": torch.tensor([4.0])}, {"theta": torch.tensor([1.0])})
    c.accumulate({"theta": torch.tensor([1.0])}, {"theta": torch.tensor([3.0])})
    assert float(c.importance["theta"]) == pytest.approx(0.5 * 4.0 + 1.0)
    assert float(c.anchor["theta"]) == 3.0  # the latest weights
    with torch.no_grad():
        model.theta.fill_(5.0)
    assert value(c.penalty(ctx, None, None)) == pytest.approx(0.5 * 2.0 * 3.0 * (5.0 - 3.0) ** 2)


def test_l2_penalty():
    model = Scalar(1.5)
    ctx = types.SimpleNamespace(model=model)
    c = L2(lambda_=3.0)
    assert c.penalty(ctx, None, None) is None
    c.after_task(ctx)
    with torch.no_grad():
        model.theta.fill_(-0.5)
    assert value(c.penalty(ctx, None, None)) == pytest.approx(0.5 * 3.0 * 2.0 ** 2)


# ----------------------------------------------------------------------------- SI
def test_si_path_integral_on_a_one_parameter_quadratic():
    a, m, lr, xi, c = 2.0, 3.0, 0.1, 0.5, 0.7
    model = Scalar(0.0)
    ctx = types.SimpleNamespace(model=model)
    si = SI(c=c, xi=xi)
    si.before_task(ctx)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    omega, theta, losses = 0.0, 0.0, []
    for _ in range(20):
        opt.zero_grad()
        loss = 0.5 * a * (model.theta - m) ** 2
        losses.append(float(loss.detach()))
        loss.sum().backward()
        g = a * (theta - m)
        opt.step()
        si.after_step(ctx)
        omega += lr * g * g            # -g * delta with delta = -lr * g
        theta -= lr * g
    assert float(si.omega["theta"]) == pytest.approx(omega, rel=1e-5)
    drop = losses[0] - float(0.5 * a * (model.theta.detach() - m) ** 2)
    assert omega == pytest.approx(drop, rel=0.15)  # the path integral is the loss drop, to first order in lr
    si.after_task(ctx)
    assert float(si.importance["theta"]) == pytest.approx(omega / (theta ** 2 + xi), rel=1e-5)
    with torch.no_grad():
        model.theta.fill_(theta + 1.0)
    assert value(si.penalty(ctx, None, None)) == pytest.approx(c * omega / (theta ** 2 + xi), rel=1e-5)


# ----------------------------------------------------------------------------- LwF
def test_lwf_distils_old_classes_only_from_the_second_task():
    stream = blobs()
    ctx = make_ctx(stream, task=0)
    lwf = LwF(alpha=2.0, temperature=3.0)
    lwf.before_task(ctx)
    assert lwf.teacher is None and lwf.penalty(ctx, batch_of(stream[0]), None) is None
    lwf.after_task(ctx)
    move_to(ctx, 1)
    lwf.before_task(ctx)
    b = batch_of(stream[1])
    out = ctx.objective.forward(ctx.model, b.data)
    assert value(lwf.penalty(ctx, b, out)) == pytest.approx(0.0, abs=1e-6)  # the teacher is the model
    with torch.no_grad():  # moving only the new classes' logits changes nothing
        ctx.model.head.bias[2:] += 5.0
    out = ctx.objective.forward(ctx.model, b.data)
    assert value(lwf.penalty(ctx, b, out)) == pytest.approx(0.0, abs=1e-6)
    perturb(ctx.model, 0.5)
    out = ctx.objective.forward(ctx.model, b.data)
    with torch.no_grad():
        old = ctx.objective.forward(lwf.teacher, b.data)
    t = 3.0
    p_old = F.softmax(old[:, :2] / t, 1)
    kl = (p_old * (F.log_softmax(old[:, :2] / t, 1) - F.log_softmax(out[:, :2] / t, 1))).sum(1).mean()
    assert value(lwf.penalty(ctx, b, out)) == pytest.approx(2.0 * t * t * float(kl.detach()), rel=1e-4)
    assert not any(p.requires_grad for p in lwf.teacher.parameters())


def test_lwf_task_incremental_scores_old_tasks_heads():
    stream = blobs("task")
    ctx = make_ctx(stream, task=0)
    lwf = LwF()
    lwf.after_task(ctx)
    move_to(ctx, 1)
    lwf.before_task(ctx)
    perturb(ctx.model, 0.5)
    b = batch_of(stream[1])
    pen = lwf.penalty(ctx, b, ctx.objective.forward(ctx.model, b.data))
    assert math.isfinite(value(pen)) and value(pen) > 0


def test_lwf_state_round_trip_restores_the_teacher():
    stream = blobs()
    ctx = make_ctx(stream, task=0)
    lwf = LwF()
    lwf.after_task(ctx)
    move_to(ctx, 1)
    lwf.before_task(ctx)
    state = lwf.state_dict()
    teacher_w = lwf.teacher.head.weight.clone()
    perturb(ctx.model, 1.0)
    again = LwF()
    again.known = []
    again.before_task(ctx)  # a resumed run copies the (changed) model first...
    again.load_state_dict(state)  # ...then restores the saved teacher
    assert torch.equal(again.teacher.head.weight, teacher_w) and again.known == [0, 1]


# ----------------------------------------------------------------------------- A-GEM
def test_agem_projection_formula():
    g = torch.tensor([1.0, -2.0, 0.5])
    ref = torch.tensor([0.0, 1.0, 1.0])
    dot = float(g @ ref)  # -1.5 < 0
    out = project(g, ref)
    assert torch.allclose(out, g - dot / 2.0 * ref)
    assert float(out @ ref) == pytest.approx(0.0, abs=1e-6)
    same = torch.tensor([1.0, 1.0, 0.0])
    assert torch.equal(project(same, ref), same)  # no conflict: untouched (a new tensor, chosen on device)


def test_agem_after_backward_projects_the_model_gradient():
    stream = blobs()
    memory = Reservoir(capacity=16, seed=0)
    ctx = make_ctx(stream, task=0, memory=memory)
    ctx.memory.add(Examples(x=stream[0].train["x"], y=stream[0].train["y"],
                            task=torch.zeros(stream[0].train.size, dtype=torch.long)))
    move_to(ctx, 1)
    agem = AGEM(sample_size=16)
    torch.manual_seed(3)
    mem = ctx.memory_sample(16)
    params = [p for p in ctx.model.parameters()]

    def flat_grad(loss):
        return torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, params)])

    out_m = ctx.objective.forward(ctx.model, mem)
    g_ref = flat_grad(ctx.objective.per_sample_loss(out_m, mem).mean())
    # a gradient that conflicts with the reference: minus the reference plus a little of the task's
    b = batch_of(stream[1])
    task_g = flat_grad(ctx.objective.per_sample_loss(ctx.objective.forward(ctx.model, b.data), b.data).mean())
    g = -g_ref + 0.1 * task_g
    assert float(g @ g_ref) < 0
    start = 0
    for p in params:
        p.grad = g[start:start + p.numel()].view_as(p).clone()
        start += p.numel()
    torch.manual_seed(3)  # the same memory draw
    agem.after_backward(ctx, b)
    new = torch.cat([p.grad.reshape(-1) for p in params])
    assert float(new @ g_ref) == pytest.approx(0.0, abs=1e-5)
    assert torch.allclose(new, g - (g @ g_ref) / (g_ref @ g_ref) * g_ref, atol=1e-6)
    assert agem.projected == 1


def test_agem_without_memory_does_nothing():
    stream = blobs()
    ctx = make_ctx(stream)
    for p in ctx.model.parameters():
        p.grad = torch.ones_like(p)
    AGEM().after_backward(ctx, batch_of(stream[0]))
    assert all(bool((p.grad == 1).all()) for p in ctx.model.parameters())


# ----------------------------------------------------------------------------- DER
def test_der_stores_padded_end_of_task_logits_and_matches_them():
    stream = blobs()
    memory = Reservoir(capacity=10, seed=0)
    ctx = make_ctx(stream, task=0, memory=memory)
    der = DER(alpha=0.5, batch_size=10)
    data = Examples(x=stream[0].train["x"], y=stream[0].train["y"],
                    task=torch.zeros(stream[0].train.size, dtype=torch.long))
    memory.add(data, ctx, lambda chosen: der.memory_extras(ctx, chosen))
    logits = memory.examples["logits"]
    assert logits.shape == (10, 4)
    with torch.no_grad():
        assert torch.allclose(logits, ctx.model(memory.examples["x"]))  # every output unit, unmasked
    move_to(ctx, 1)
    b = batch_of(stream[1])
    assert value(der.penalty(ctx, b, None)) == pytest.approx(0.0, abs=1e-10)
    with torch.no_grad():
        ctx.model.head.bias += 1.0  # every logit moves by 1: MSE 1
    assert value(der.penalty(ctx, b, None)) == pytest.approx(0.5, rel=1e-5)


def test_masked_mse_ignores_padding_and_crops_shapes():
    cur = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, float("-inf")]])
    old = torch.tensor([[1.0, 4.0], [2.0, float("nan")]])
    assert float(masked_mse(cur, old)) == pytest.approx((0 + 4 + 4) / 3)


def test_der_plus_plus_adds_the_label_loss_on_replayed_rows():
    stream = blobs()
    memory = Reservoir(capacity=10, seed=0)
    ctx = make_ctx(stream, task=0, memory=memory)
    der = DERPlusPlus(alpha=0.5, beta=2.0, batch_size=10)
    data = Examples(x=stream[0].train["x"], y=stream[0].train["y"],
                    task=torch.zeros(stream[0].train.size, dtype=torch.long))
    memory.add(data, ctx, lambda chosen: der.memory_extras(ctx, chosen))
    move_to(ctx, 1)
    torch.manual_seed(0)
    pen = value(der.penalty(ctx, batch_of(stream[1]), None))
    torch.manual_seed(0)
    ctx.memory_sample(10)  # the first draw (logits; MSE 0 here)
    second = ctx.memory_sample(10)
    ce = value(ctx.objective.per_sample_loss(ctx.objective.forward(ctx.model, second), second).mean())
    assert pen == pytest.approx(2.0 * ce, rel=1e-5)


# ----------------------------------------------------------------------------- HFT and freezing
def test_hft_freezes_a_seeded_half_and_restores_it():
    stream = blobs()
    ctx = make_ctx(stream)
    ctx.model = build_model("mlp", stream, hidden=[8, 8, 8])  # 8 parameter tensors
    names = [n for n, _ in ctx.model.named_parameters()]
    hft = HFT(seed=3)
    chosen = []
    for task in range(3):
        ctx.task_index = task
        hft.before_task(ctx)
        frozen = [n for n, p in ctx.model.named_parameters() if not p.requires_grad]
        assert len(frozen) == 4 and frozen == hft.frozen
        opt = torch.optim.SGD([p for p in ctx.model.parameters() if p.requires_grad], lr=0.1)
        assert sum(len(g["params"]) for g in opt.param_groups) == 4
        chosen.append(frozen)
        hft.after_task(ctx)
        assert all(p.requires_grad for p in ctx.model.parameters())
    assert len({tuple(c) for c in chosen}) > 1  # a new half each task
    assert HFT(seed=3).choose(names, 1) == chosen[1]  # seeded
    keep = HFT(seed=3, keep_trainable=["head"])
    keep.before_task(ctx)
    assert ctx.model.head.weight.requires_grad and ctx.model.head.bias.requires_grad
    assert len(keep.frozen) == 3  # half of the 6 non-head tensors


def test_freeze_backbone_from_the_second_task():
    stream = blobs()
    ctx = make_ctx(stream)
    fz = Freeze(modules=["backbone"], from_task=1)
    fz.before_task(ctx)
    assert all(p.requires_grad for p in ctx.model.parameters())
    ctx.task_index = 1
    fz.before_task(ctx)
    assert [n for n, p in ctx.model.named_parameters() if p.requires_grad] == ["head.weight", "head.bias"]
    with pytest.raises(ConfigError, match="'encoder' matches no parameter.*backbone, head"):
        Freeze(modules="encoder", from_task=0).before_task(ctx)
    Freeze(modules=["*.bias"], from_task=0).before_task(ctx)
    assert not ctx.model.head.bias.requires_grad and ctx.model.head.weight.requires_grad


# ----------------------------------------------------------------------------- language models
@pytest.mark.parametrize("names", [["si", "online-ewc"], ["agem"], ["der++"], ["ewc", "freeze"]])
def test_consolidators_run_on_a_tiny_causal_lm(names):
    """The same consolidators, unchanged, on a Hugging Face causal LM (objective: next-token loss)."""
    pytest.importorskip("transformers")
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from lifelong.data.benchmarks import BENCHMARKS
    from lifelong.engine import train_stream
    from lifelong.hf.models import tiny_causal_lm
    from lifelong.strategies import compose

    stream = BENCHMARKS.get("arithmetic-skills")(seed=0, train_size=48, test_size=8, max_digits=1,
                                                 skills=["add", "mul"])
    model = tiny_causal_lm(stream, hidden=32, heads=4, layers=1, seed=0)
    params = {"online-ewc": {"samples": 8}, "ewc": {"samples": 8, "fisher_batch": 4},
              "agem": {"memory_size": 24, "buffer": "class-balanced"},
              "der++": {"memory_size": 24, "buffer": "herding"}, "freeze": {"modules": ["transformer.h.0"]}}
    recipe = compose([(n, params.get(n, {})) for n in names])
    result = train_stream(stream, model, recipe, TrainConfig(steps=6, batch_size=8, optimizer="adamw", lr=1e-3,
                                                              device="cpu", eval_batch_size=16, log_every=0))
    assert result.complete and all(math.isfinite(a) for row in result.accuracy for a in row)
    losses = [c for c in recipe.consolidators]
    if "der++" in names:
        logits = recipe.memory.examples["logits"]
        assert logits.shape[:2] == recipe.memory.examples["input_ids"].shape and logits.shape[2] == len(
            stream.info["tokenizer"])
    if "si" in names:
        assert all(bool(torch.isfinite(v).all()) for v in losses[0].importance.values())
    if "freeze" in names:
        assert not any(p.requires_grad for n, p in model.named_parameters() if n.startswith("transformer.h.0."))
