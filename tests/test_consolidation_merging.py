"""Weight-merging consolidators (average, magmax, ema): hand-checked merges on a
2-parameter Linear, parameter selection, state and exact resume, and short real runs."""

from __future__ import annotations

import io
import types

import pytest
import torch
from torch import nn

from lifelong.consolidation import CONSOLIDATORS, EMA, Average, MagMax
from lifelong.data import Examples, Stream, Task
from lifelong.engine import Recipe, TrainConfig, seed_everything, train_stream
from lifelong.errors import ConfigError
from lifelong.models import build_model
from lifelong.strategies import build_strategy, compose


def linear(w: float = 0.0, b: float = 0.0) -> nn.Linear:
    """A Linear(1, 1): exactly two parameters, weight and bias."""
    m = nn.Linear(1, 1)
    set_weights(m, w, b)
    return m


def set_weights(m: nn.Linear, w: float, b: float) -> None:
    with torch.no_grad():
        m.weight.fill_(w)
        m.bias.fill_(b)


def weights(m: nn.Linear) -> tuple[float, float]:
    return float(m.weight.detach()), float(m.bias.detach())


def ctx_of(model: nn.Module):
    return types.SimpleNamespace(model=model)


def tasks(method, model: nn.Linear, ends: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Run the task hooks with 'training' that simply lands on the given task-end weights;
    returns (weights each task started from, merged weights after each task)."""
    ctx = ctx_of(model)
    starts, merged = [], []
    for w, b in ends:
        method.before_task(ctx)
        starts.append(weights(model))
        set_weights(model, w, b)
        method.after_task(ctx)
        merged.append(weights(model))
    return starts, merged


def test_average_is_the_mean_of_task_end_weights_and_training_goes_on_from_the_live_weights():
    model = linear(0.0, 0.0)
    starts, merged = tasks(Average(), model, [(1.0, 2.0), (3.0, -2.0), (8.0, 3.0)])
    assert merged == [(1.0, 2.0), (2.0, 0.0), (4.0, 1.0)]
    assert starts == [(0.0, 0.0), (1.0, 2.0), (3.0, -2.0)]  # train_from live: the un-merged task ends


def test_average_train_from_merged_starts_each_task_from_the_average():
    model = linear(0.0, 0.0)
    starts, merged = tasks(Average(train_from="merged"), model, [(1.0, 2.0), (3.0, -2.0), (8.0, 3.0)])
    assert merged == [(1.0, 2.0), (2.0, 0.0), (4.0, 1.0)]
    assert starts == [(0.0, 0.0), (1.0, 2.0), (2.0, 0.0)]  # task 3 starts from the average of tasks 1-2


def test_magmax_keeps_the_largest_magnitude_task_vector_per_weight():
    model = linear(0.5, 0.0)  # theta_0 = (0.5, 0)
    _, merged = tasks(MagMax(), model, [(1.5, -2.0), (-2.5, 1.0), (0.0, 0.5)])
    # task vectors: (1, -2), (-3, 1), (-0.5, 0.5); per weight the largest |.|: w -> -3 (task 2), b -> -2 (task 1)
    assert merged == [(1.5, -2.0), (-2.5, -2.0), (-2.5, -2.0)]


def test_magmax_tie_keeps_the_earlier_task():
    model = linear(0.0, 0.0)
    _, merged = tasks(MagMax(), model, [(1.0, 1.0), (-1.0, 2.0)])
    assert merged[-1] == (1.0, 2.0)


def test_ema_tracks_steps_and_is_swapped_in_at_the_task_end():
    model = linear(0.0, 0.0)
    ema, ctx = EMA(decay=0.5), ctx_of(model)
    ema.before_task(ctx)
    for w in (1.0, 2.0):  # two optimiser steps landing on w
        set_weights(model, w, -w)
        ema.after_step(ctx)
    ema.after_task(ctx)
    # ema = 0.5 * 0 + 0.5 * 1 = 0.5; then 0.5 * 0.5 + 0.5 * 2 = 1.25
    assert weights(model) == (1.25, -1.25)
    ema.before_task(ctx)  # train_from live: the next task starts from the live weights
    assert weights(model) == (2.0, -2.0)
    set_weights(model, 4.0, 0.0)
    ema.after_step(ctx)   # the average carries over the task boundary: 0.5 * 1.25 + 0.5 * 4
    ema.after_task(ctx)
    assert weights(model) == (2.625, -0.625)


def test_params_pattern_merges_only_the_named_parameters():
    model = linear(0.0, 0.0)
    _, merged = tasks(Average(params="bias"), model, [(1.0, 2.0), (3.0, 4.0)])
    assert merged == [(1.0, 2.0), (3.0, 3.0)]  # the weight keeps its task-end value, the bias is averaged


def test_default_selection_is_the_trainable_parameters():
    model = linear(0.0, 0.0)
    model.weight.requires_grad_(False)
    merge = Average()
    _, merged = tasks(merge, model, [(1.0, 2.0), (1.0, 4.0)])
    assert set(merge.base) == {"bias"}
    assert merged[-1] == (1.0, 3.0)


def test_a_parameter_that_starts_training_later_counts_its_unchanged_value_for_earlier_tasks():
    model, merge = linear(0.0, 0.0), Average()
    ctx = ctx_of(model)
    model.weight.requires_grad_(False)
    merge.before_task(ctx)
    set_weights(model, 0.0, 2.0)
    merge.after_task(ctx)
    model.weight.requires_grad_(True)
    merge.before_task(ctx)
    set_weights(model, 6.0, 4.0)
    merge.after_task(ctx)
    assert weights(model) == (3.0, 3.0)  # weight: (0 + 6) / 2


def test_a_grown_head_keeps_old_rows_merged_and_new_rows_from_their_start():
    model = nn.Linear(1, 1, bias=False)
    merge, ctx = MagMax(), types.SimpleNamespace(model=None)
    holder = nn.Module()
    holder.head = model
    ctx.model = holder
    with torch.no_grad():
        model.weight.fill_(0.0)
    merge.before_task(ctx)
    with torch.no_grad():
        model.weight.fill_(2.0)
    merge.after_task(ctx)
    holder.head = nn.Linear(1, 2, bias=False)  # the head grew: old row copied, a new row initialised at 5
    with torch.no_grad():
        holder.head.weight.copy_(torch.tensor([[2.0], [5.0]]))
    merge.before_task(ctx)
    with torch.no_grad():
        holder.head.weight.copy_(torch.tensor([[1.0], [4.0]]))
    merge.after_task(ctx)
    # row 0: theta_0 = 0, vectors 2 then 1 -> 2; row 1: theta_0 = 5 (its value when it appeared), vector -1 -> 4
    assert holder.head.weight.flatten().tolist() == [2.0, 4.0]


def test_bad_parameters_are_config_errors():
    with pytest.raises(ConfigError, match="train_from"):
        Average(train_from="both")
    with pytest.raises(ConfigError, match="decay"):
        EMA(decay=1.0)
    with pytest.raises(ConfigError, match="match no parameter"):
        MagMax(params="backbone").before_task(ctx_of(linear()))


@pytest.mark.parametrize("cls", [Average, MagMax, EMA])
def test_state_loads_with_weights_only_and_continues_identically(cls):
    model, merge = linear(0.0, 0.0), cls()
    ctx = ctx_of(model)
    merge.before_task(ctx)
    set_weights(model, 1.0, -3.0)
    merge.after_step(ctx)
    merge.after_task(ctx)
    buf = io.BytesIO()
    torch.save(merge.state_dict(), buf)
    state = torch.load(io.BytesIO(buf.getvalue()), weights_only=True)
    again = cls()
    again.load_state_dict(state)
    other = linear(*weights(model))
    for m, c in ((model, merge), (other, again)):
        cx = ctx_of(m)
        c.before_task(cx)
        set_weights(m, -2.0, 0.5)
        c.after_step(cx)
        c.after_task(cx)
    assert weights(model) == weights(other)


def test_registered_and_composable_with_replay():
    for name in ("average", "magmax", "ema"):
        assert name in CONSOLIDATORS
    recipe = compose(["magmax", ("er", {"memory_size": 50})])
    assert recipe.name == "magmax+er"
    assert isinstance(recipe.consolidators[0], MagMax) and recipe.memory is not None and recipe.review is not None
    assert build_strategy("ema", {"decay": 0.9}).consolidators[0].decay == 0.9


# ----------------------------------------------------------------------------- real runs
def blobs(n_tasks: int = 3, n: int = 60, dim: int = 8, scenario: str = "task") -> Stream:
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(2 * n_tasks, dim, generator=g) * 3
    out = []
    for t in range(n_tasks):
        cls = (2 * t, 2 * t + 1)

        def make(m):
            y = torch.tensor(cls).repeat_interleave(m)
            return Examples(x=centres[y] + torch.randn(len(y), dim, generator=g), y=y)

        out.append(Task(f"t{t}", make(n // 2), make(10), cls))
    return Stream("blobs", out, scenario, 2 * n_tasks, (dim,))


def _run(stream, recipe, checkpointer=None, resume=None, seed=0):
    seed_everything(seed if resume is None else 99)
    model = build_model("mlp", stream, hidden=[16])
    cfg = TrainConfig(steps=12, batch_size=16, lr=0.05, momentum=0.9, device="cpu", seed=seed, log_every=1,
                      checkpoint_every=1)
    return model, train_stream(stream, model, recipe, cfg, checkpointer=checkpointer, resume=resume)


@pytest.mark.parametrize("name", ["magmax", "average", "ema"])
def test_real_run_ends_with_the_merged_model_and_resumes_exactly(name):
    stream = blobs()

    def recipe():
        return compose([name, ("er", {"memory_size": 30})]) if name == "magmax" else build_strategy(name)

    blobs_saved: list[bytes] = []

    def keep(state):
        b = io.BytesIO()
        torch.save(state, b)
        blobs_saved.append(b.getvalue())

    r = recipe()
    model, full = _run(stream, r, checkpointer=keep)
    assert full.complete and len(full.accuracy) == 3
    merge = r.consolidators[0]
    final = dict(model.named_parameters())
    if name == "magmax":
        for n, base in merge.base.items():
            assert torch.equal(final[n].detach(), base + merge.vector[n])
    elif name == "average":
        for n, total in merge.total.items():
            assert torch.allclose(final[n].detach(), total / 3)
    else:
        for n, avg in merge.average.items():
            assert torch.equal(final[n].detach(), avg)
    # the task-end stash differs from the merge (the run really merged something)
    assert any(not torch.equal(merge.stash[n], final[n].detach()) for n in merge.stash)
    for target in [(1, 5), (2, 0)]:  # mid-task 2, and the boundary after task 2
        state = next(s for s in (torch.load(io.BytesIO(b), weights_only=False) for b in blobs_saved)
                     if (s["phase"], s["step"]) == target)
        _, resumed = _run(stream, recipe(), resume=state)
        assert resumed.accuracy == full.accuracy, target
        assert resumed.losses == full.losses, target


def test_lora_then_magmax_merges_the_base_weights_the_adapters_were_folded_into():
    pytest.importorskip("peft")
    from lifelong.data.benchmarks import BENCHMARKS
    from lifelong.hf.models import tiny_causal_lm

    stream = BENCHMARKS.get("arithmetic-skills")(seed=0, train_size=32, test_size=16, max_digits=1,
                                                 skills=["add", "mul"], general_size=0)
    model = tiny_causal_lm(stream, hidden=32, heads=2, layers=1, seed=0)
    recipe = compose([("lora", {"rank": 2}), ("magmax", {"params": "*base_layer.weight"})])
    cfg = TrainConfig(steps=4, batch_size=8, optimizer="adamw", lr=2e-2, device="cpu", seed=0)
    result = train_stream(stream, model, recipe, cfg)
    assert result.complete
    magmax = recipe.consolidators[1]
    named = dict(model.named_parameters())
    assert magmax.base and all(n.endswith("base_layer.weight") for n in magmax.base)
    for n, base in magmax.base.items():
        assert torch.equal(named[n].detach(), base + magmax.vector[n])
    assert any(magmax.vector[n].abs().sum() > 0 for n in magmax.vector)  # the adapters changed the base weights
