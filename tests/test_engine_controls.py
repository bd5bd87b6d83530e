"""Training controls of the loop, named like TrainingArguments: learning-rate schedules (per task
with re-warming, or over the whole stream), gradient accumulation, precision, gradient
checkpointing, max_grad_norm; and exact resume with them."""

from __future__ import annotations

import io
import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from lifelong.curriculum.registry import SCHEDULES  # noqa: E402
from lifelong.engine import Recipe, TrainConfig, seed_everything, train_stream  # noqa: E402
from lifelong.engine.callbacks import Callback  # noqa: E402
from lifelong.errors import ConfigError, LifelongError  # noqa: E402
from lifelong.models import build_model  # noqa: E402
from test_engine_loop import Slots, Tape, blobs  # noqa: E402


def _model(stream, seed=0):
    seed_everything(seed)
    return build_model("mlp", stream, hidden=[16])


def _reference_lrs(name, total, warmup, lr):
    """What transformers' schedule gives over ``total`` steps (the lr used at each step)."""
    transformers = pytest.importorskip("transformers")
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    sched = transformers.get_scheduler(name, opt, num_warmup_steps=warmup, num_training_steps=total)
    out = []
    for _ in range(total):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


class UsedLR(Callback):
    """Records the learning rate of each step: a consolidator-free probe through the optimiser's step pre-hook."""

    def __init__(self):
        self.lrs = []
        self._hooked = set()

    def on_task_start(self, ctx):
        opt = ctx.optimizer
        if id(opt) not in self._hooked:
            self._hooked.add(id(opt))
            opt.register_step_pre_hook(lambda o, a, k: self.lrs.append(o.param_groups[0]["lr"]))


def test_cosine_schedule_with_warmup_restarts_at_every_task():
    s = blobs(n_tasks=2)
    probe = UsedLR()
    cfg = TrainConfig(steps=6, batch_size=16, lr=0.1, lr_scheduler="cosine", warmup_steps=2, device="cpu")
    train_stream(s, _model(s), Recipe(), cfg, callbacks=[probe])
    ref = _reference_lrs("cosine", 6, 2, 0.1)
    assert probe.lrs == pytest.approx(ref + ref)  # re-warmed and decayed again in task 2
    assert probe.lrs[0] == 0.0 and max(probe.lrs) == pytest.approx(0.1)


def test_one_schedule_over_the_whole_stream():
    s = blobs(n_tasks=3)
    probe = UsedLR()
    cfg = TrainConfig(steps=4, batch_size=16, lr=0.1, lr_scheduler="linear", warmup_ratio=0.25,
                      lr_scheduler_scope="stream", device="cpu")
    result = train_stream(s, _model(s), Recipe(), cfg, callbacks=[probe])
    assert probe.lrs == pytest.approx(_reference_lrs("linear", 12, 3, 0.1))
    assert [row["lr"] for row in result.schedule_log][-1] < 0.02  # the rate is logged with the schedules


def test_gradient_accumulation_equals_one_big_batch():
    s = blobs(n_tasks=2)
    runs = {}
    for batch, accum in ((16, 1), (8, 2), (4, 4)):
        model = _model(s)
        cfg = TrainConfig(steps=5, batch_size=batch, gradient_accumulation_steps=accum, lr=0.1, momentum=0.9,
                          device="cpu", log_every=1)
        result = train_stream(s, model, Recipe(), cfg)
        runs[(batch, accum)] = (result, torch.cat([p.detach().flatten() for p in model.parameters()]))
    (r1, w1), (r2, w2), (r4, w4) = runs.values()
    assert torch.allclose(w1, w2, atol=1e-5) and torch.allclose(w1, w4, atol=1e-5)
    assert r1.accuracy == r2.accuracy == r4.accuracy and r1.task_steps == r2.task_steps == [5, 5]
    assert [x["loss"] for x in r1.losses] == pytest.approx([x["loss"] for x in r2.losses], rel=1e-5)


def test_accumulation_counts_epochs_in_optimiser_steps():
    s = blobs(n_tasks=1, n=64)
    result = train_stream(s, _model(s), Recipe(), TrainConfig(epochs=2, batch_size=8, gradient_accumulation_steps=2,
                                                               device="cpu"))
    assert result.task_steps == [8]  # 2 epochs x 8 batches of 8 rows = 16 batches = 8 steps of 2


def test_bf16_autocast_runs_on_cpu():
    from lifelong.consolidation.base import Consolidator

    class Spy(Consolidator):
        name = "spy"

        def __init__(self):
            self.dtypes = set()

        def penalty(self, ctx, batch, out):
            self.dtypes.add(out.dtype)
            return None

    s = blobs(n_tasks=2)
    spy = Spy()
    result = train_stream(s, _model(s), Recipe(consolidators=[spy]),
                          TrainConfig(steps=20, batch_size=16, lr=0.1, precision="bf16", device="cpu"))
    assert spy.dtypes == {torch.bfloat16} and result.complete
    assert result.accuracy[0][0] > 0.6  # it still learns


def test_amp_on_cpu_says_it_is_ignored_and_fp16_on_cpu_is_refused():
    s = blobs(n_tasks=1)
    with pytest.warns(UserWarning, match="train.amp only acts on CUDA"):
        result = train_stream(s, _model(s), Recipe(), TrainConfig(steps=2, amp=True, device="cpu"))
    assert any("precision: bf16" in n for n in result.notes)
    with pytest.raises(LifelongError, match="fp16 needs CUDA"):
        train_stream(s, _model(s), Recipe(), TrainConfig(steps=2, precision="fp16", device="cpu"))


def test_bad_controls_are_named():
    with pytest.raises(ConfigError, match="lr_scheduler 'cosin' is unknown"):
        TrainConfig(lr_scheduler="cosin")
    with pytest.raises(ConfigError, match="gradient_accumulation_steps must be >= 1"):
        TrainConfig(gradient_accumulation_steps=0)
    with pytest.raises(ConfigError, match="same setting"):
        TrainConfig(grad_clip=1.0, max_grad_norm=2.0)
    assert TrainConfig(max_grad_norm=0.5).clip_norm == 0.5 == TrainConfig(grad_clip=0.5).clip_norm
    s = blobs(n_tasks=1)
    with pytest.raises(LifelongError, match="gradient_checkpointing needs a model that supports it"):
        train_stream(s, _model(s), Recipe(), TrainConfig(steps=1, gradient_checkpointing=True, device="cpu"))


def test_max_grad_norm_clips_like_grad_clip():
    s = blobs(n_tasks=1)
    weights = []
    for kw in ({"grad_clip": 0.01}, {"max_grad_norm": 0.01}, {}):
        model = _model(s)
        train_stream(s, model, Recipe(), TrainConfig(steps=5, lr=0.5, device="cpu", **kw))
        weights.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.equal(weights[0], weights[1]) and not torch.allclose(weights[0], weights[2])


def test_gradient_checkpointing_gives_the_same_losses():
    pytest.importorskip("transformers")
    from lifelong.data.benchmarks import BENCHMARKS
    from lifelong.hf.models import tiny_causal_lm

    s = BENCHMARKS.get("arithmetic-skills")(seed=0, train_size=32, test_size=8, max_digits=1, skills=["add"])
    losses = []
    for ckpt in (False, True):
        cfg = TrainConfig(steps=4, batch_size=8, optimizer="adamw", lr=1e-3, device="cpu", log_every=1,
                          gradient_checkpointing=ckpt)
        r = train_stream(s, tiny_causal_lm(s, hidden=16, heads=2, layers=2, seed=0), Recipe(), cfg)
        losses.append([x["loss"] for x in r.losses])
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)


@pytest.mark.parametrize("stop_at", [(1, 3), (1, 0)])
def test_resume_is_exact_with_schedule_accumulation_and_bf16(stop_at):
    s = blobs(n_tasks=2)

    def recipe():
        return Recipe(memory=Slots(30), review=SCHEDULES.get("replay")(0.3))

    cfg = dict(steps=6, batch_size=8, gradient_accumulation_steps=2, optimizer="adamw", lr=0.01,
               lr_scheduler="cosine", warmup_steps=2, precision="bf16", checkpoint_every=1, device="cpu")
    states = []
    full = train_stream(s, _model(s), recipe(), TrainConfig(**cfg), checkpointer=lambda st: states.append(Tape.freeze(st)))
    load = lambda b: torch.load(io.BytesIO(b), weights_only=True)  # noqa: E731
    chosen = next(load(b) for b in states if (load(b)["phase"], load(b)["step"]) == stop_at)
    seed_everything(99)
    resumed = train_stream(s, _model(s, seed=5), recipe(), TrainConfig(**cfg), resume=chosen)
    assert resumed.accuracy == full.accuracy and resumed.losses == full.losses and resumed.complete


def test_spaced_review_knowledge_survives_a_task_end_resume():
    """A phase-end checkpoint keeps the review schedule's state (spaced review's recall model), so a
    run resumed from it ends with the uninterrupted run's numbers."""
    s = blobs(n_tasks=3)

    def recipe():
        return Recipe(memory=Slots(30), review=SCHEDULES.get("spaced-review")(quiz_every=2, quiz_size=4))

    cfg = dict(steps=6, batch_size=8, lr=0.05, device="cpu", log_every=1)
    states = []
    full = train_stream(s, _model(s), recipe(), TrainConfig(**cfg), checkpointer=lambda st: states.append(Tape.freeze(st)))
    load = lambda b: torch.load(io.BytesIO(b), weights_only=True)  # noqa: E731
    chosen = next(load(b) for b in states if (load(b)["phase"], load(b)["step"]) == (2, 0))
    assert chosen["review"] is not None
    resumed = train_stream(s, _model(s, seed=5), recipe(), TrainConfig(**cfg), resume=chosen)
    assert resumed.accuracy == full.accuracy and resumed.schedule_log == full.schedule_log
