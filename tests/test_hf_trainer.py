"""The Hugging Face Trainer integration: schedules drive its data, feedback flows back,
penalties reach its loss, the accuracy matrix is filled, and DDP ranks share one draw."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from lifelong.consolidation.base import Consolidator  # noqa: E402
from lifelong.curriculum.base import Feedback, Schedule  # noqa: E402
from lifelong.curriculum.basic import UniformReplay  # noqa: E402
from lifelong.data.benchmarks import BENCHMARKS  # noqa: E402
from lifelong.errors import ConfigError  # noqa: E402
from lifelong.memory import BUFFERS  # noqa: E402

transformers = pytest.importorskip("transformers")
from lifelong.hf.models import tiny_causal_lm  # noqa: E402
from lifelong.hf.trainer import ContinualTrainer, LifelongTrainerMixin  # noqa: E402


def _args(tmp_path, **kw):
    base = dict(output_dir=str(tmp_path / "out"), per_device_train_batch_size=16, learning_rate=3e-3,
                max_steps=20, report_to=[], use_cpu=True, logging_strategy="no", save_strategy="no",
                disable_tqdm=True, lr_scheduler_type="constant", seed=0)
    base.update(kw)
    return transformers.TrainingArguments(**base)


def _stream(**kw):
    params = dict(seed=0, train_size=96, test_size=32, max_digits=2, skills=["add", "mul"])
    params.update(kw)
    return BENCHMARKS.get("arithmetic-skills")(**params)


class EasyOnly(Schedule):
    """Weight only on 1-digit items; records every feedback it receives."""

    name = "easy-only"
    needs_feedback = True
    needs_difficulty = True

    def __init__(self):
        super().__init__()
        self.feedback: list[Feedback] = []
        self.weight_calls = 0

    def weights(self, step):
        self.weight_calls += 1
        return (self.pool.difficulty == 1).float()

    def update(self, feedback):
        self.feedback.append(feedback)


class CountingPenalty(Consolidator):
    """A penalty pulling the output layer to zero, and counters for the step hooks."""

    name = "counting"

    def __init__(self, lam):
        self.lam, self.calls, self.steps, self.grads = lam, 0, 0, 0

    def penalty(self, ctx, batch, out):
        self.calls += 1
        assert out.shape[0] == batch.size and "labels" in batch.data
        return self.lam * sum((p ** 2).sum() for n, p in ctx.model.named_parameters() if "wte" in n)

    def after_backward(self, ctx, batch):
        self.grads += 1

    def after_step(self, ctx):
        self.steps += 1


def test_trainer_follows_schedule_and_feeds_back_losses(tmp_path):
    s = _stream()
    model = tiny_causal_lm(s, hidden=32, heads=2)
    trainer = transformers.Trainer(model=model, args=_args(tmp_path))
    sched = EasyOnly()
    cl = ContinualTrainer(trainer, s, schedule=sched)
    assert isinstance(trainer, LifelongTrainerMixin) and isinstance(trainer, transformers.Trainer)
    result = cl.fit()
    # one update per optimiser step per task, each with the batch's pool indices and per-sample losses
    assert len(sched.feedback) == 2 * 20 and sched.weight_calls >= 2 * 20
    for fb in sched.feedback:
        assert fb.indices.shape == fb.losses.shape == (16,)
        assert torch.isfinite(fb.losses).all() and (fb.losses > 0).all()
    last_task = s[1]
    seen = torch.cat([fb.indices for fb in sched.feedback[20:]])
    assert (last_task.train["difficulty"][seen] == 1).all()  # only the easy items were drawn
    # the losses fed back are the objective's per-sample completion losses of the rows drawn
    assert result.accuracy and len(result.accuracy) == 2 and len(result.accuracy[0]) == 2
    assert all(0.0 <= a <= 1.0 for row in result.accuracy for a in row)
    assert result.baseline == [0.0, 0.0] and result.complete and result.task_steps == [20, 20]


def test_trainer_adds_penalties_and_runs_step_hooks(tmp_path):
    s = _stream(skills=["add"])
    norms = {}
    for lam in (0.0, 0.5):
        model = tiny_causal_lm(s, hidden=32, heads=2)
        trainer = transformers.Trainer(model=model, args=_args(tmp_path, max_steps=15))
        c = CountingPenalty(lam)
        ContinualTrainer(trainer, s, consolidators=[c], evaluate=False).fit()
        assert c.calls == 15 and c.steps == 15 and c.grads == 15
        norms[lam] = float(model.transformer.wte.weight.detach().norm())
    assert norms[0.5] < 0.7 * norms[0.0]  # the penalty reached the Trainer's loss


def test_trainer_replay_and_errors(tmp_path):
    s = _stream()
    model = tiny_causal_lm(s, hidden=32, heads=2)
    trainer = transformers.Trainer(model=model, args=_args(tmp_path, max_steps=10))
    mem = BUFFERS.get("reservoir")(capacity=40)
    seen_tasks = []

    class Record(UniformReplay):
        needs_feedback = True

        def update(self, fb):
            seen_tasks.append(fb.groups)

    cl = ContinualTrainer(trainer, s, review=Record(0.5), memory=mem)
    cl.fit()
    assert len(mem) == 40
    replayed = torch.cat(seen_tasks)
    assert len(seen_tasks) > 0 and (replayed == 0).all()  # memory rows of task 0 while learning task 1
    with pytest.raises(ConfigError, match="needs a replay memory"):
        ContinualTrainer(trainer, s, review=UniformReplay(0.5))
    with pytest.raises(ConfigError, match="expected a transformers.Trainer"):
        ContinualTrainer(object(), s)


DDP_SCRIPT = textwrap.dedent("""
    import json, os, sys, torch
    os.environ["HF_HUB_OFFLINE"] = "1"
    torch.set_num_threads(1)
    import transformers
    from lifelong.curriculum.base import Schedule
    from lifelong.data.benchmarks import BENCHMARKS
    from lifelong.hf.models import tiny_causal_lm
    from lifelong.hf.trainer import ContinualTrainer, LMCollator

    class LossWeighted(Schedule):
        name = "loss-weighted"
        needs_feedback = True
        def start(self, pool, total_steps, seed=0):
            super().start(pool, total_steps, seed)
            self.w = torch.ones(pool.size)
        def weights(self, step):
            return self.w
        def update(self, fb):
            self.w[fb.indices] = fb.losses.double().float() + 0.1

    seen = []
    class Recording(LMCollator):
        def __call__(self, features):
            batch = super().__call__(features)
            seen.append(batch["lifelong_index"].tolist())
            return batch

    out = sys.argv[1]
    s = BENCHMARKS.get("arithmetic-skills")(seed=0, train_size=64, test_size=16, max_digits=1, skills=["add"])
    model = tiny_causal_lm(s, hidden=32, heads=2)
    args = transformers.TrainingArguments(output_dir=out, per_device_train_batch_size=4, learning_rate=1e-2,
        max_steps=6, report_to=[], use_cpu=True, ddp_backend="gloo", logging_strategy="no", save_strategy="no",
        disable_tqdm=True, seed=0, dataloader_drop_last=False)
    trainer = transformers.Trainer(model=model, args=args)
    sched = LossWeighted()
    cl = ContinualTrainer(trainer, s, schedule=sched, evaluate=False)
    trainer.data_collator = Recording()
    cl.fit()
    rank = int(os.environ["RANK"])
    flat = torch.cat([p.detach().flatten() for p in model.parameters()])
    json.dump({"seen": seen, "world": int(args.world_size), "weights_sum": float(flat.double().sum()),
               "weights_head": flat[:50].tolist(), "schedule": sched.w.tolist()},
              open(os.path.join(out, f"rank{rank}.json"), "w"))
    # tear the gloo group down before exit: its threads otherwise abort at shutdown
    import torch.distributed as dist
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
""")


@pytest.mark.slow
def test_ddp_ranks_see_disjoint_samples_of_one_draw_and_end_identical(tmp_path):
    script = tmp_path / "ddp_run.py"
    script.write_text(DDP_SCRIPT)
    torchrun = Path(sys.executable).with_name("torchrun")
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    proc = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node=2", str(script), str(tmp_path)],
                          capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert r0["world"] == r1["world"] == 2
    assert len(r0["seen"]) == len(r1["seen"]) == 6
    for a, b in zip(r0["seen"], r1["seen"]):
        assert len(a) == len(b) == 4
        # one global draw of 8 per step, split between the ranks; a non-uniform
        # schedule draws without replacement within a step, so slices are disjoint
        assert not set(a) & set(b)
    # DDP kept the replicas identical, and the gathered feedback kept the schedules identical
    assert r0["weights_head"] == r1["weights_head"] and r0["weights_sum"] == r1["weights_sum"]
    assert r0["schedule"] == r1["schedule"]
    assert sum(1 for w in r0["schedule"] if w != 1.0) >= 8  # feedback from both ranks' rows arrived
