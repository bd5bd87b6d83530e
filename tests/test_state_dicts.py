"""State dicts name what they save: plain values only (``torch.load(weights_only=True)``),
and loading one into a fresh instance restores the state and the behaviour exactly.

Covers every registered schedule (curricula, teachers, review schedules),
consolidator and memory buffer after real use.
"""

from __future__ import annotations

import io
import math

import pytest
import torch

from lifelong.consolidation import CONSOLIDATORS
from lifelong.curriculum import SCHEDULES, Feedback, PoolView, ScheduleSampler
from lifelong.data import make_benchmark
from lifelong.data.examples import Examples
from lifelong.engine import TrainConfig, seed_everything, train_stream
from lifelong.engine.context import Batch, Context
from lifelong.engine.objective import ClassificationObjective
from lifelong.engine.pool import task_examples
from lifelong.memory import BUFFERS
from lifelong.models import build_model
from lifelong.state import check_plain
from lifelong.strategies import build_strategy


def round_trip(state):
    """Through a real file format, refusing anything but tensors and plain containers."""
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


def assert_same(a, b, where="state"):
    """Recursive equality: tensors exactly (NaN == NaN), containers element-wise."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape, where
        assert torch.equal(torch.nan_to_num(a, nan=-7.25), torch.nan_to_num(b, nan=-7.25)), where
        assert torch.equal(torch.isnan(a) if a.is_floating_point() else a, torch.isnan(b) if b.is_floating_point() else b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and sorted(a, key=str) == sorted(b, key=str), f"{where}: keys {list(a)} vs {list(b)}"
        for k in a:
            assert_same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and math.isnan(a):
        assert isinstance(b, float) and math.isnan(b), where
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def test_check_plain_refuses_what_a_weights_only_checkpoint_cannot_load():
    import numpy as np

    check_plain({"a": [torch.ones(2), 1, 2.5, "x", None, True, (1, 2)]})
    for bad in (np.zeros(2), np.float64(1.0), torch.nn.Linear(2, 2), torch.Generator(), object()):
        with pytest.raises(TypeError, match="cannot"):
            check_plain({"inner": [bad]})


# ----------------------------------------------------------------------------- schedules
GROUPS = torch.arange(3).repeat_interleave(20)
PARAMS = {"learning-progress": {"episode": 4}, "mastering-rate": {"episode": 4},
          "alp-gmm": {"episode": 4, "fit_every": 4}, "ucb": {"episode": 4},
          "spaced-review": {"quiz_every": 4, "quiz_size": 2, "base_interval": 5},
          "sequential": {"threshold": 0.3, "episode": 4}, "self-paced": {"grow_every": 3},
          "data-dropout": {"patience": 1}, "linear": {"warmup": 0.5}}


def pool() -> PoolView:
    return PoolView(60, GROUPS.clone(), 3, torch.linspace(0, 1, 60).flip(0).clone(), ["a", "b", "c"],
                    {"params": [[0.0], [0.5], [1.0]], "ages": [40.0, 20.0, 0.0]})


def drive(schedule, sampler, steps, start):
    out = []
    for s in range(start, start + steps):
        if hasattr(schedule, "fraction"):
            schedule.fraction(s)
        idx = sampler.next_batch()
        out.append(idx.clone())
        correct = (idx % 3 != 0) if s % 2 else (idx % 2 == 0)
        schedule.update(Feedback(s + 1, idx, idx.float() / 60 + 0.01 * s, correct, GROUPS[idx]))
        if getattr(schedule, "quiz_every", 0) and (s + 1) % schedule.quiz_every == 0:
            schedule.update(Feedback(s + 1, scores={0: 0.9 - 0.05 * (s % 5), 1: 0.95, 2: 0.4}))
    return out


@pytest.mark.parametrize("name", SCHEDULES.names())
def test_schedule_state_is_plain_and_restores_exactly(name):
    a = SCHEDULES.build(name, PARAMS.get(name, {}))
    a.start(pool(), 30, seed=3)
    sa = ScheduleSampler(a, 6, seed=3)
    drive(a, sa, 14, 0)
    state, sampler_state = round_trip(a.state_dict()), round_trip(sa.state_dict())

    b = SCHEDULES.build(name, PARAMS.get(name, {}))
    b.start(pool(), 30, seed=3)  # the loop's order on resume: set-up, then restore
    sb = ScheduleSampler(b, 6, seed=3)
    b.load_state_dict(state)
    sb.load_state_dict(sampler_state)
    assert_same(b.state_dict(), a.state_dict(), name)
    expected, got = drive(a, sa, 14, 14), drive(b, sb, 14, 14)
    assert all(torch.equal(x, y) for x, y in zip(expected, got)), name
    assert_same(b.state_dict(), a.state_dict(), name)
    assert b.log() == pytest.approx(a.log(), nan_ok=True)


def test_review_state_carries_over_between_tasks():
    a = SCHEDULES.build("spaced-review", PARAMS["spaced-review"])
    for task in range(2):  # the same instance is restarted at every task
        a.start(pool(), 30, seed=task)
        drive(a, ScheduleSampler(a, 6, seed=task), 10, 0)
    b = SCHEDULES.build("spaced-review", PARAMS["spaced-review"])
    b.load_state_dict(round_trip(a.state_dict()))
    assert b.clock_base == a.clock_base == 30 and b.quizzes == a.quizzes > 0
    b.start(pool(), 30, seed=2)
    a.start(pool(), 30, seed=2)
    assert_same(b.state_dict(), a.state_dict())


# ----------------------------------------------------------------------------- consolidators and memory
STRATEGY_PARAMS = {"ewc": {"samples": 16}, "online-ewc": {"samples": 16}, "agem": {"memory_size": 30, "sample_size": 8},
                   "der": {"memory_size": 30}, "der++": {"memory_size": 30}}


@pytest.fixture(scope="module")
def digits():
    return make_benchmark("split-digits", classes_per_task=5)


def two_tasks(stream, recipe, seed=0):
    seed_everything(seed)
    model = build_model("mlp", stream, hidden=[16])
    cfg = TrainConfig(steps=4, batch_size=16, device="cpu", seed=seed, log_every=0)
    train_stream(stream, model, recipe, cfg)
    return model


def task_ctx(stream, model, memory, task=1):
    objective = ClassificationObjective(stream)
    seen = sorted({c for t in stream.tasks[: task + 1] for c in t.classes})
    objective.begin_task(stream, stream[task], seen)
    ctx = Context(model=model, stream=stream, task=stream[task], objective=objective,
                  config=TrainConfig(device="cpu", batch_size=8), device=torch.device("cpu"), memory=memory)
    ctx.task_index, ctx.seen_classes = task, seen
    return ctx


CLASSIFIER_CONSOLIDATORS = [n for n in CONSOLIDATORS.names() if n != "lora"]


@pytest.mark.parametrize("name", CLASSIFIER_CONSOLIDATORS)
def test_consolidator_state_after_a_run_is_plain_and_restores_exactly(name, digits):
    params = STRATEGY_PARAMS.get(name, {})
    recipe = build_strategy(name, params)
    model = two_tasks(digits, recipe)
    c = recipe.consolidators[0]
    state = round_trip(c.state_dict())
    fresh = build_strategy(name, params).consolidators[0]
    fresh.load_state_dict(state)
    assert_same(fresh.state_dict(), c.state_dict(), name)
    if name in ("ewc", "online-ewc", "si", "l2"):
        assert state, f"{name} learned nothing to save"
    # the same penalty on the same batch
    ctx = task_ctx(digits, model, recipe.memory)
    data = task_examples(digits[1], ("x", "y"))
    batch = Batch(data.take(torch.arange(8)), 8, torch.arange(8))
    out = ctx.forward(batch.data)
    torch.manual_seed(0)
    want = c.penalty(ctx, batch, out)
    torch.manual_seed(0)
    got = fresh.penalty(ctx, batch, out)
    assert (want is None) == (got is None)
    if want is not None:
        assert torch.equal(want, got)


def test_lora_state_after_a_run_is_plain_and_restores_exactly():
    pytest.importorskip("peft")
    pytest.importorskip("transformers")
    stream = make_benchmark("arithmetic-skills", skills=["add", "sub"], train_size=16, test_size=8)
    seed_everything(0)
    model = build_model("tiny-causal-lm", stream, layers=1, hidden=16, heads=2)
    for mode in ("merge", "keep"):
        recipe = build_strategy("lora", {"rank": 2, "mode": mode, "target_modules": ["c_attn"]})
        train_stream(stream, model if mode == "merge" else build_model("tiny-causal-lm", stream, layers=1, hidden=16,
                                                                        heads=2), recipe,
                     TrainConfig(steps=2, batch_size=4, device="cpu", log_every=0, optimizer="adamw", lr=1e-3))
        c = recipe.consolidators[0]
        fresh = build_strategy("lora", {"rank": 2, "mode": mode}).consolidators[0]
        fresh.load_state_dict(round_trip(c.state_dict()))
        assert_same(fresh.state_dict(), c.state_dict())
        assert fresh.adapter_names() == c.adapter_names()
        assert (c.merged if mode == "merge" else c.kept) == ["task0", "task1"]


@pytest.mark.parametrize("buffer", BUFFERS.names())
def test_memory_state_after_a_run_is_plain_and_restores_exactly(buffer, digits):
    recipe = build_strategy("er", {"memory_size": 24, "buffer": buffer})
    model = two_tasks(digits, recipe)
    mem = recipe.memory
    assert len(mem) == 24
    fresh = BUFFERS.build(buffer, {"capacity": 24, "seed": 0})
    fresh.load_state_dict(round_trip(mem.state_dict()))
    assert_same(fresh.state_dict(), mem.state_dict(), buffer)
    # the same next selection (the generator state came back too)
    ctx = task_ctx(digits, model, None, task=1)
    more = task_examples(digits[0], ("x", "y"))
    more = Examples({**more, "task": torch.zeros(more.size, dtype=torch.long)})
    mem.add(more, ctx)
    fresh.add(more, ctx)
    assert_same(fresh.state_dict(), mem.state_dict(), buffer)
