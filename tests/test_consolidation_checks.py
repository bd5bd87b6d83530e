"""Consolidators: early, readable errors on bad hyper-parameters and patterns,
and per-step code that never reads a tensor value on the host."""

from __future__ import annotations

import contextlib
import re

import pytest
import torch

from lifelong.consolidation import AGEM, DER, EWC, HFT, SI, Freeze, OnlineEWC
from lifelong.consolidation._util import number
from lifelong.consolidation.agem import project, projection
from lifelong.consolidation.der import masked_mse
from lifelong.data import Examples
from lifelong.errors import ConfigError
from lifelong.memory import Reservoir
from lifelong.strategies import make_consolidator
from test_consolidation import batch_of, blobs, make_ctx, move_to

# (consolidator, parameter as a config writes it, whether a negative value is refused)
NUMERIC = [
    ("ewc", "lambda", True), ("ewc", "samples", True), ("ewc", "fisher_batch", True), ("ewc", "seed", False),
    ("online-ewc", "lambda", True), ("online-ewc", "gamma", True), ("online-ewc", "samples", True),
    ("online-ewc", "fisher_batch", True),
    ("si", "c", True), ("si", "xi", True),
    ("l2", "lambda", True),
    ("lwf", "alpha", True), ("lwf", "temperature", True),
    ("agem", "sample_size", True),
    ("der", "alpha", True), ("der", "batch_size", True),
    ("der++", "alpha", True), ("der++", "beta", True), ("der++", "batch_size", True),
    ("hft", "fraction", True), ("hft", "seed", False),
    ("freeze", "from_task", True),
]


@pytest.mark.parametrize("name,param,negative_refused", NUMERIC)
def test_bad_numeric_hyper_parameters_name_the_consolidator_parameter_and_value(name, param, negative_refused):
    bads = ["abc", None, [1], True, float("nan")] + ([-1] if negative_refused else [])
    for bad in bads:
        with pytest.raises(ConfigError) as info:
            make_consolidator(name, {param: bad})
        msg = str(info.value)
        assert msg.startswith(f"{name}: {param} must be "), msg
        assert f"got {bad!r}." in msg and ("a number" in msg or "an integer" in msg), msg
        assert "not supported" not in msg and "argument" not in msg, msg  # no raw Python message


def test_the_message_says_what_is_accepted():
    cases = {
        ("ewc", "lambda", "abc"): "ewc: lambda must be a number >= 0; got 'abc'.",
        ("online-ewc", "gamma", 1.5): "online-ewc: gamma must be a number in [0, 1]; got 1.5.",
        ("si", "xi", 0): "si: xi must be a number > 0; got 0.",
        ("hft", "fraction", 1.0): "hft: fraction must be a number in [0, 1) (the share of parameter tensors "
                                  "frozen per task); got 1.0.",
        ("agem", "sample_size", 2.5): "agem: sample_size must be an integer >= 1; got 2.5.",
        ("der", "batch_size", -3): "der: batch_size must be an integer >= 0 (0 = the training batch size); "
                                   "got -3.",
    }
    for (name, param, bad), expected in cases.items():
        with pytest.raises(ConfigError, match=re.escape(expected)):
            make_consolidator(name, {param: bad})


def test_good_values_are_converted_to_numbers():
    ewc = make_consolidator("ewc", {"lambda": "250", "samples": 32.0, "fisher_batch": "4", "seed": -7})
    assert (ewc.lambda_, ewc.samples, ewc.fisher_batch, ewc.seed) == (250.0, 32, 4, -7)
    assert isinstance(ewc.lambda_, float) and all(isinstance(v, int) for v in (ewc.samples, ewc.fisher_batch))
    oe = OnlineEWC(gamma=1)
    assert oe.gamma == 1.0 and isinstance(oe.gamma, float)
    assert SI(c="0.5", xi=1e-3).c == 0.5
    assert HFT(fraction=0, seed="3").seed == 3 and AGEM(sample_size="16").sample_size == 16
    assert DER(alpha=0, batch_size=0).batch_size == 0
    assert number("x", "seed", 2 ** 62 + 1, None, integer=True) == 2 ** 62 + 1  # exact, not via float
    with pytest.raises(ConfigError, match=r"ewc: lambda must be a number >= 0; got inf\."):
        EWC(lambda_=float("inf"))


def test_pattern_parameters_must_be_strings():
    with pytest.raises(ConfigError, match=r"freeze: modules must be a module/parameter name.*got \[1\]\."):
        Freeze(modules=[1])
    with pytest.raises(ConfigError, match=r"hft: keep_trainable must be .*got \{'head': 1\}\."):
        HFT(keep_trainable={"head": 1})
    with pytest.raises(ConfigError, match=r"freeze: modules must name at least one module"):
        Freeze(modules=[])


# ----------------------------------------------------------------------------- freeze: early pattern check
def test_freeze_bad_pattern_stops_the_first_task_before_training():
    stream = blobs()
    ctx = make_ctx(stream, task=0)
    fz = Freeze(modules=["backbone", "encoder"], from_task=1)
    with pytest.raises(ConfigError, match=r"freeze\.modules: 'encoder' matches no parameter.*backbone, head"):
        fz.before_task(ctx)
    assert all(p.requires_grad for p in ctx.model.parameters()) and fz.frozen == []


def test_freeze_checks_every_task_but_freezes_only_from_from_task():
    stream = blobs()
    ctx = make_ctx(stream, task=0)
    fz = Freeze(modules=["backbone"], from_task=1)
    fz.before_task(ctx)  # a good pattern: checked, nothing frozen yet
    assert all(p.requires_grad for p in ctx.model.parameters()) and fz.frozen == []
    move_to(ctx, 1)
    fz.before_task(ctx)
    assert [n for n, p in ctx.model.named_parameters() if p.requires_grad] == ["head.weight", "head.bias"]
    assert fz.frozen and all(n.startswith("backbone.") for n in fz.frozen)


# ----------------------------------------------------------------------------- no host syncs per step
@contextlib.contextmanager
def no_host_reads():
    """Make every way of reading a tensor's value into Python raise (bool, int, float, item)."""
    def refuse(*_a, **_k):
        raise AssertionError("a tensor value was read on the host")

    saved = {k: getattr(torch.Tensor, k) for k in ("__bool__", "__int__", "__float__", "item", "tolist")}
    try:
        for k in saved:
            setattr(torch.Tensor, k, refuse)
        yield
    finally:
        for k, v in saved.items():
            setattr(torch.Tensor, k, v)


@pytest.mark.parametrize("sign", [-1.0, 1.0])
def test_agem_projection_equals_the_formula_for_both_signs(sign):
    g_ref = torch.tensor([0.5, -1.0, 2.0, 0.0])
    g = torch.tensor([1.0, 0.3, sign * 1.5, -0.7])
    dot = float(g @ g_ref)
    assert (dot < 0) == (sign < 0)
    expected = g - (min(dot, 0.0) / float(g_ref @ g_ref)) * g_ref
    with no_host_reads():
        out, hit = projection(g, g_ref)
        plain = project(g, g_ref)
    assert torch.allclose(out, expected, atol=1e-7) and torch.equal(out, plain)
    assert bool(hit) == (dot < 0)
    if dot < 0:
        assert float(out @ g_ref) == pytest.approx(0.0, abs=1e-6)
    else:
        assert torch.equal(out, g)  # bit-identical: no-op
    zero_ref = torch.zeros(4)  # an all-zero reference never projects
    assert torch.equal(project(g, zero_ref), g)


def test_agem_step_writes_no_host_sync_and_counts_projections():
    stream = blobs()
    memory = Reservoir(capacity=16, seed=0)
    ctx = make_ctx(stream, task=0, memory=memory)
    ctx.memory.add(Examples(x=stream[0].train["x"], y=stream[0].train["y"],
                            task=torch.zeros(stream[0].train.size, dtype=torch.long)))
    move_to(ctx, 1)
    agem = AGEM(sample_size=16)
    params = list(ctx.model.parameters())
    torch.manual_seed(5)
    mem = ctx.memory_sample(16)
    ref = torch.autograd.grad(ctx.objective.per_sample_loss(ctx.objective.forward(ctx.model, mem), mem).mean(),
                              params)
    for sign, projected in [(1.0, 0), (-1.0, 1), (-1.0, 2)]:
        for p, r in zip(params, ref):
            p.grad = sign * r.clone() + 0.01  # aligned with the reference (+) or against it (-)
        before = [p.grad.clone() for p in params]
        torch.manual_seed(5)  # the same memory draw as ``ref``
        with no_host_reads():
            agem.after_backward(ctx, batch_of(stream[1]))
        assert agem.projected == projected
        if sign > 0:
            assert all(torch.equal(p.grad, b) for p, b in zip(params, before))
        else:
            new = torch.cat([p.grad.reshape(-1) for p in params])
            assert float(new @ torch.cat([r.reshape(-1) for r in ref])) == pytest.approx(0.0, abs=1e-5)
    state = agem.state_dict()
    again = AGEM()
    again.load_state_dict(state)
    assert again.projected == 2


def test_masked_mse_without_host_sync_matches_the_masked_mean():
    cur = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, float("-inf")]], requires_grad=True)
    old = torch.tensor([[1.0, 4.0], [2.0, float("nan")]])
    with no_host_reads():
        loss = masked_mse(cur, old)
    assert float(loss.detach()) == pytest.approx((0 + 4 + 4) / 3)
    loss.backward()
    assert torch.allclose(cur.grad, torch.tensor([[0.0, -4 / 3, 0.0], [-4 / 3, 0.0, 0.0]]))
    # nothing comparable (all stored logits padding): zero loss that still backpropagates zeros
    cur2 = torch.randn(2, 3, requires_grad=True)
    with no_host_reads():
        empty = masked_mse(cur2, torch.full((2, 3), float("nan")))
    assert float(empty.detach()) == 0.0
    empty.backward()
    assert torch.equal(cur2.grad, torch.zeros(2, 3))
