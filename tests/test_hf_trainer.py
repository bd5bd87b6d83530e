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


def _with_group_column(stream, column="skill"):
    """Give every task's training rows a per-sample skill column: 1-digit vs 2-digit problems."""
    for t in stream:  # values 2 and 5: not 0-based on purpose
        t.train = t.train.with_fields(**{column: (t.train["difficulty"].long() - 1) * 3 + 2})
    return stream


@pytest.mark.parametrize("name,params", [("learning-progress", dict(episode=8)), ("ucb", dict(episode=8))])
def test_teachers_run_over_tasks_and_choose_among_skills(tmp_path, name, params):
    from lifelong.curriculum.registry import SCHEDULES

    # one group per task (no skill column): task 1 used to crash (its feedback carried group 1 of a 1-group view)
    s = _stream()
    trainer = transformers.Trainer(model=tiny_causal_lm(s, hidden=32, heads=2), args=_args(tmp_path, max_steps=8))
    result = ContinualTrainer(trainer, s, schedule=SCHEDULES.get(name)(**params), evaluate=False).fit()
    assert [row["task"] for row in result.schedule_log] == [0, 1]
    assert result.schedule_log[0]["p/add"] == pytest.approx(1.0) and result.schedule_log[1]["p/mul"] == pytest.approx(1.0)

    # a per-sample skill column: the teacher chooses among the skills of each task
    s = _with_group_column(_stream())
    trainer = transformers.Trainer(model=tiny_causal_lm(s, hidden=32, heads=2), args=_args(tmp_path, max_steps=12))
    teacher = SCHEDULES.get(name)(**params)
    seen = []
    update = teacher.update

    def spy(fb):
        seen.append(fb.groups.clone())
        update(fb)

    teacher.update = spy
    result = ContinualTrainer(trainer, s, schedule=teacher, evaluate=False).fit()
    assert teacher.pool.num_groups == 2 and teacher.pool.group_names == ["skill=2", "skill=5"]
    groups = torch.cat(seen)
    assert set(groups.tolist()) == {0, 1}  # feedback groups index the view's two skills, on both tasks
    for row in result.schedule_log:
        probs = [row["p/skill=2"], row["p/skill=5"]]
        assert sum(probs) == pytest.approx(1.0, abs=1e-5) and all(0.0 < p < 1.0 for p in probs)
    # the view's groups are the skill column recoded 0..G-1
    assert torch.equal(teacher.pool.groups, (s[1].train["skill"] == 5).long())


def test_group_column_must_be_one_value_per_row(tmp_path):
    from lifelong.errors import DataError

    s = _stream()
    s[0].train = s[0].train.with_fields(group=torch.zeros(s[0].train.size, 2, dtype=torch.long))
    trainer = transformers.Trainer(model=tiny_causal_lm(s, hidden=32, heads=2), args=_args(tmp_path, max_steps=2))
    with pytest.raises(DataError, match=r"'group' column must hold one group value per row"):
        ContinualTrainer(trainer, s, evaluate=False).fit()


def test_spaced_review_gets_quizzes_through_the_trainer(tmp_path):
    from lifelong.curriculum.registry import SCHEDULES
    from lifelong.hf.trainer import PoolSchedule

    s = _stream()
    trainer = transformers.Trainer(model=tiny_causal_lm(s, hidden=32, heads=2), args=_args(tmp_path, max_steps=12))
    review = SCHEDULES.get("spaced-review")(quiz_every=4, quiz_size=6, base_interval=1000)
    quizzes, trained = [], []
    update = review.update

    def spy(fb):
        (quizzes if fb.scores is not None else trained).append(fb)
        update(fb)

    review.update = spy
    mem = BUFFERS.get("reservoir")(capacity=40)
    result = ContinualTrainer(trainer, s, review=review, memory=mem).fit()
    # no memory while learning task 0; 12 steps of task 1 -> quizzes after steps 4, 8 and 12
    assert [fb.step for fb in quizzes] == [4, 8, 12] and review.quizzes == 3
    for fb in quizzes:
        assert torch.equal(fb.indices, review.quiz_indices()) and len(fb.indices) == 6
        assert (fb.groups == 0).all() and set(fb.scores) == {0}
        # the score is the quiz items' exact-match accuracy
        assert fb.scores[0] == pytest.approx(float(fb.correct.float().mean()))
    state = review.tasks["add"]
    assert "measured_at" in state and state["measured"] <= 1.0  # the memory model took the quiz results
    row = result.schedule_log[-1]
    assert "review/recall/add" in row and "review/interval/add" in row
    # quiz items are held out: memory rows were replayed, but never the quiz items
    assert isinstance(trainer.lifelong.pool_schedule, PoolSchedule) and trained
    replayed = set(torch.cat([fb.indices for fb in trained]).tolist())
    assert replayed and not replayed & set(review.quiz_indices().tolist())


def test_module_docstring_example_runs(tmp_path):
    """The example at the top of lifelong.hf.trainer builds a learner as written (keyword names included)."""
    import lifelong.hf.trainer as mod
    from lifelong.consolidation import EWC
    from lifelong.curriculum.registry import SCHEDULES
    from lifelong.memory import Reservoir

    doc = mod.__doc__.splitlines()
    start = next(i for i, line in enumerate(doc) if "learner = ContinualTrainer(" in line)
    end = next(i for i in range(start, len(doc)) if doc[i].rstrip().endswith("])"))
    code = textwrap.dedent("\n".join(doc[start:end + 1]))
    s = _stream(skills=["add"])
    trainer = transformers.Trainer(model=tiny_causal_lm(s, hidden=32, heads=2), args=_args(tmp_path, max_steps=2))
    ns = dict(ContinualTrainer=ContinualTrainer, trainer=trainer, stream=s, SCHEDULES=SCHEDULES,
              UniformReplay=UniformReplay, Reservoir=Reservoir, EWC=EWC)
    exec(code, ns)
    learner = ns["learner"]
    assert isinstance(learner.consolidators[0], EWC) and learner.consolidators[0].lambda_ == 100
    assert learner.schedule.name == "self-paced" and len(learner.memory) == 0


DDP_SCRIPT = textwrap.dedent("""
    import json, os, sys, torch
    os.environ["HF_HUB_OFFLINE"] = "1"
    torch.set_num_threads(1)
    import transformers
    from lifelong.curriculum.base import Schedule
    from lifelong.data.benchmarks import BENCHMARKS
    from lifelong.hf.models import tiny_causal_lm
    from lifelong.hf.trainer import ContinualTrainer, LMCollator
    from lifelong.curriculum.registry import SCHEDULES
    from lifelong.memory import BUFFERS

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
    s = BENCHMARKS.get("arithmetic-skills")(seed=0, train_size=64, test_size=16, max_digits=1, skills=["add", "sub"])
    model = tiny_causal_lm(s, hidden=32, heads=2)
    args = transformers.TrainingArguments(output_dir=out, per_device_train_batch_size=4, learning_rate=1e-2,
        max_steps=6, report_to=[], use_cpu=True, ddp_backend="gloo", logging_strategy="no", save_strategy="no",
        disable_tqdm=True, seed=0, dataloader_drop_last=False)
    trainer = transformers.Trainer(model=model, args=args)
    sched = LossWeighted()
    review = SCHEDULES.get("spaced-review")(quiz_every=2, quiz_size=4, base_interval=1000)
    quizzes = []
    update = review.update
    def spy(fb):
        if fb.scores is not None:
            quizzes.append([fb.step, fb.indices.tolist(), fb.scores])
        update(fb)
    review.update = spy
    cl = ContinualTrainer(trainer, s, schedule=sched, review=review, memory=BUFFERS.get("reservoir")(capacity=32),
                          evaluate=False)
    trainer.data_collator = Recording()
    cl.fit()
    rank = int(os.environ["RANK"])
    flat = torch.cat([p.detach().flatten() for p in model.parameters()])
    json.dump({"seen": seen, "world": int(args.world_size), "weights_sum": float(flat.double().sum()),
               "weights_head": flat[:50].tolist(), "schedule": sched.w.tolist(),
               "quizzes": quizzes},
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
    assert len(r0["seen"]) == len(r1["seen"]) == 2 * 6
    for a, b in zip(r0["seen"], r1["seen"]):
        # each rank's batch: its 4 rows of the task (pool indices < 64), then its share of memory rows,
        # as `lifelong run` draws them (one engine for both drivers)
        assert len(a) == len(b) and sum(i < 64 for i in a) == sum(i < 64 for i in b) == 4
        # one global draw of 8 per step, split between the ranks; a non-uniform
        # schedule draws without replacement within a step, so slices are disjoint
        assert not set(a) & set(b)
    # DDP kept the replicas identical, and the gathered feedback kept the schedules identical
    assert r0["weights_head"] == r1["weights_head"] and r0["weights_sum"] == r1["weights_sum"]
    assert r0["schedule"] == r1["schedule"]
    assert sum(1 for w in r0["schedule"] if w != 1.0) >= 8  # feedback from both ranks' rows arrived
    # spaced review quizzed the same held-out memory items on both ranks (no deadlock) with the same scores
    assert [q[0] for q in r0["quizzes"]] == [2, 4, 6] and r0["quizzes"] == r1["quizzes"]
    assert all(len(q[1]) == 4 for q in r0["quizzes"])
