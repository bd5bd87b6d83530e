"""Make an existing ``transformers.Trainer`` (or any subclass, e.g. TRL's ``SFTTrainer``) learn continually.

A few lines turn a Trainer the user already configured into a continual learner::

    trainer = Trainer(model=model, args=TrainingArguments(...))
    learner = ContinualTrainer(trainer, stream, schedule=SCHEDULES.get("self-paced")(),
                               review=UniformReplay(0.3), memory=Reservoir(200),
                               consolidators=[EWC(lambda_=100)])
    result = learner.fit()          # RunResult: accuracy matrix, baseline, task times
    print(result.accuracy)

How it hooks in (transformers 5.x), all without copying the Trainer's loop:

* **data order**: the Trainer builds its training DataLoader from
  ``self._get_train_sampler(dataset)`` (see ``Trainer._get_dataloader``). The
  mixin returns a :class:`~lifelong.curriculum.sampler.ScheduleItemSampler`,
  which asks the schedule for ``weights(step)`` at every batch, so mixture
  weights changed by feedback take effect on the next batch;
* **feedback**: ``compute_loss`` keeps the model outputs, computes per-sample
  completion losses (and exact-match correctness) with the
  :class:`~lifelong.hf.objective.CausalLMObjective` and hands them to
  ``schedule.update`` -- only when a schedule asks for feedback, so a plain
  schedule costs nothing;
* **groups**: the curriculum's view of task t has one group per value of the
  task's per-sample ``group`` (or ``skill``) column, so a teacher chooses among
  the skills within a task; without such a column it has one group. Feedback
  reaches each schedule with group ids of its own view;
* **consolidation**: ``compute_loss`` adds each consolidator's ``penalty``; its
  ``after_backward`` / ``after_step`` hooks run as torch optimiser step
  pre/post hooks (after the Trainer's gradient clipping), ``before_task`` /
  ``after_task`` around each task's ``trainer.train()``;
* **replay**: the training dataset of task t is the task's data followed by
  the replay memory; the review schedule's share of each batch
  (``review.fraction``) is drawn from memory by the review schedule, the rest
  by the curriculum. A review schedule that quizzes (``review.quiz_every``,
  e.g. spaced review) has its held-out memory items assessed every
  ``quiz_every`` optimiser steps, from the optimiser post-step hook, as the
  engine loop does; every rank assesses the same items with its own replica
  (no collective call), so DDP ranks stay in step;
* **assessment**: after every task all tasks are assessed (exact match of
  greedy completions), filling the accuracy matrix of a
  :class:`~lifelong.engine.result.RunResult`.
* **distributed** (DDP through ``torchrun`` / ``accelerate launch``): every rank
  builds the same sampler (same seed, same schedule state), which yields the
  *global* batch (per-device size x world size); accelerate's batch-sampler
  sharding hands rank r the r-th slice, so ranks see disjoint samples of one
  draw. Feedback is gathered across ranks before ``update``, so every rank's
  schedule stays identical.

The Trainer's ``data_collator`` is replaced by :class:`LMCollator` (the data
is already tokenised) and its optimiser and LR scheduler are rebuilt for each
task (the set of trainable parameters may change, e.g. LoRA per task).
"""

from __future__ import annotations

import math
import time
from typing import Any, Sequence

import torch
from torch import Tensor
from torch.utils.data import Dataset

from lifelong.curriculum.base import Feedback, PoolView, ReviewSchedule, Schedule
from lifelong.curriculum.basic import Uniform
from lifelong.curriculum.sampler import ScheduleItemSampler
from lifelong.data.examples import Examples
from lifelong.data.task import Stream, Task
from lifelong.engine.result import RunResult
from lifelong.errors import ConfigError, DataError, require
from lifelong.hf.objective import LM_FIELDS, CausalLMObjective

INDEX, TASK = "lifelong_index", "lifelong_task"
#: per-sample columns of a task's training rows that split it into groups (skills) for the curriculum, first found wins
GROUP_COLUMNS = ("group", "skill")


# ----------------------------------------------------------------------------- data
class PoolDataset(Dataset):
    """The study pool as a map-style dataset: rows of ``Examples`` plus their pool index and task."""

    def __init__(self, examples: Examples, tasks: Tensor):
        self.examples = Examples({f: examples[f] for f in LM_FIELDS})
        self.tasks = tasks.long()

    def __len__(self) -> int:
        return self.examples.size

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        row = {k: v[i] for k, v in self.examples.items()}
        row[INDEX] = torch.tensor(i)
        row[TASK] = self.tasks[i]
        return row

    def __getitems__(self, indices: list[int]) -> list[dict[str, Tensor]]:
        idx = torch.as_tensor(indices, dtype=torch.long)
        cols = {k: v[idx] for k, v in self.examples.items()}
        cols[INDEX] = idx
        cols[TASK] = self.tasks[idx]
        return [cols]  # one pre-gathered batch; LMCollator recognises its 2-D input_ids


class LMCollator:
    """Stacks rows and trims columns past the batch's longest row (right padding)."""

    def __call__(self, features: list[dict[str, Tensor]]) -> dict[str, Tensor]:
        if len(features) == 1 and features[0]["input_ids"].dim() == 2:
            batch = dict(features[0])
        else:
            batch = {k: torch.stack([f[k] for f in features]) for k in features[0]}
        width = int(batch["attention_mask"].sum(1).max())
        if width < batch["input_ids"].shape[1]:
            for k in LM_FIELDS:
                batch[k] = batch[k][:, :max(width, 2)]
        return batch


# ----------------------------------------------------------------------------- schedules
class PoolSchedule(Schedule):
    """The curriculum over the current task's rows mixed with a review schedule over memory rows.

    Pool layout: ``[task rows | memory rows]``. A share ``review.fraction(step)``
    of the probability mass goes to memory (split by the review schedule's
    weights), the rest to the task rows (split by the curriculum's weights).
    Feedback is routed to each by pool offset, and its ``groups`` are looked up
    in that schedule's own view: the curriculum's groups (skills within the
    task) and the review's groups (source tasks of memory rows) are numbered
    independently, each indexing its own ``num_groups``.
    """

    def __init__(self, curriculum: Schedule, review: ReviewSchedule | None, n_task: int):
        super().__init__()
        self.curriculum, self.review, self.n_task = curriculum, review, int(n_task)
        self.needs_feedback = curriculum.needs_feedback or bool(review and review.needs_feedback)
        self.uniform = curriculum.uniform and review is None

    def weights(self, step: int) -> Tensor:
        w = self.curriculum.weights(step).double()
        if self.review is None:
            return w
        frac = float(self.review.fraction(step))
        r = self.review.weights(step).double()
        w = w / w.sum().clamp_min(1e-12) * (1.0 - frac)
        r = r / r.sum().clamp_min(1e-12) * frac
        return torch.cat([w, r])

    def update(self, feedback: Feedback) -> None:
        idx = feedback.indices
        if idx is None:
            return
        for sched, sel, offset in ((self.curriculum, idx < self.n_task, 0),
                                   (self.review, idx >= self.n_task, self.n_task)):
            if sched is None or not sched.needs_feedback or not bool(sel.any()):
                continue
            pick = lambda t: t[sel] if t is not None else None  # noqa: E731
            local = idx[sel] - offset
            groups = sched.pool.groups[local] if sched.pool is not None else pick(feedback.groups)
            sched.update(Feedback(feedback.step, local, pick(feedback.losses), pick(feedback.correct), groups))

    def log(self) -> dict[str, float]:
        out = dict(self.curriculum.log())
        if self.review is not None:
            out.update({f"review/{k}": v for k, v in self.review.log().items()})
        return out


# ----------------------------------------------------------------------------- the Trainer mixin
class LifelongTrainerMixin:
    """Overrides of ``Trainer`` methods; mixed in front of the user's Trainer class by :func:`attach`."""

    lifelong: "ContinualTrainer | None" = None

    def _get_train_sampler(self, train_dataset=None):  # type: ignore[override]
        cl = self.lifelong
        if cl is None or cl.pool_schedule is None:
            return super()._get_train_sampler(train_dataset)  # type: ignore[misc]
        # the global batch: accelerate's BatchSamplerShard gives rank r the r-th per-device slice
        world = max(1, int(self.args.world_size))
        per_device = int(self.args.per_device_train_batch_size)
        return ScheduleItemSampler(cl.pool_schedule, per_device * world, cl.num_batches, seed=cl.task_seed,
                                   rank=0, world_size=1)

    def _set_signature_columns_if_needed(self) -> None:
        super()._set_signature_columns_if_needed()  # type: ignore[misc]
        for col in (INDEX, TASK):
            if col not in self._signature_columns:
                self._signature_columns.append(col)

    def create_optimizer(self, model=None):  # type: ignore[override]
        opt = super().create_optimizer(model) if model is not None else super().create_optimizer()  # type: ignore[misc]
        cl = self.lifelong
        if cl is not None:
            cl._hook_optimizer(opt)
        return opt

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # type: ignore[override]
        index = inputs.pop(INDEX, None)
        tasks = inputs.pop(TASK, None)
        cl = self.lifelong
        if cl is None or not (cl.feedback_needed or cl.penalties):
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)  # type: ignore[misc]
        loss, outputs = super().compute_loss(model, inputs, True, num_items_in_batch)  # type: ignore[misc]
        logits = outputs["logits"] if isinstance(outputs, dict) else outputs[0]
        fields = {k: inputs[k] for k in LM_FIELDS}
        if tasks is not None:
            fields["task"] = tasks
        data = Examples(fields)
        cl._last_batch = data
        if model.training and cl.penalties:
            from lifelong.engine.context import Batch

            batch = Batch(data, data.size, index if index is not None else torch.arange(data.size))
            scale = self._penalty_scale(num_items_in_batch)
            for c in cl.penalties:
                extra = c.penalty(cl.ctx, batch, logits)
                if extra is not None:
                    loss = loss + extra * scale
        if model.training and cl.feedback_needed and index is not None:
            cl._feedback(self, logits.detach(), data, index)
        return (loss, outputs) if return_outputs else loss

    def _penalty_scale(self, num_items_in_batch) -> float:
        # The Trainer divides a per-batch loss by the accumulation steps unless the model already normalised
        # it over the accumulated batch; a penalty must end up counted once per optimiser step either way.
        scaled = (getattr(self, "model_accepts_loss_kwargs", False) and num_items_in_batch is not None) \
            or getattr(self, "compute_loss_func", None) is not None
        return 1.0 / max(1, int(self.args.gradient_accumulation_steps)) if scaled else 1.0


_CLASSES: dict[type, type] = {}


def lifelong_trainer_class(base: type) -> type:
    """``base`` (a Trainer class) with :class:`LifelongTrainerMixin` in front; cached per base."""
    if issubclass(base, LifelongTrainerMixin):
        return base
    cls = _CLASSES.get(base)
    if cls is None:
        cls = type(f"Lifelong{base.__name__}", (LifelongTrainerMixin, base), {"__module__": __name__})
        _CLASSES[base] = cls
    return cls


def attach(trainer: Any) -> Any:
    """Give an existing Trainer instance the lifelong overrides (its class gains the mixin; state is kept)."""
    transformers = require("transformers", "llm", "The Trainer integration")
    if not isinstance(trainer, transformers.Trainer):
        raise ConfigError(f"expected a transformers.Trainer (or subclass such as SFTTrainer); got {type(trainer).__name__}.")
    trainer.__class__ = lifelong_trainer_class(type(trainer))
    return trainer


# ----------------------------------------------------------------------------- the driver
class ContinualTrainer:
    """Drive a Hugging Face Trainer through a stream of LM tasks with schedules, replay and consolidation.

    ``schedule`` orders the current task's data (default uniform); ``review``
    with ``memory`` replays earlier tasks; ``consolidators`` add penalties and
    gradient/parameter hooks; ``steps`` per task overrides the Trainer's
    ``max_steps`` (else ``args.max_steps``, else ``num_train_epochs`` passes).
    ``fit()`` returns a :class:`RunResult`.
    """

    def __init__(self, trainer: Any, stream: Stream, schedule: Schedule | None = None,
                 review: ReviewSchedule | None = None, memory: Any = None, consolidators: Sequence[Any] = (),
                 objective: CausalLMObjective | None = None, steps: int | None = None, seed: int | None = None,
                 eval_batch_size: int = 128, evaluate: bool = True):
        if stream.kind != "lm":
            raise ConfigError(f"ContinualTrainer needs a language-model stream (kind 'lm'); '{stream.name}' is "
                              f"'{stream.kind}'.")
        if review is not None and memory is None:
            raise ConfigError(f"review schedule '{review.name}' needs a replay memory; pass memory=.")
        stream.validate()
        self.trainer = attach(trainer)
        self.trainer.lifelong = self
        self.stream = stream
        self.schedule = schedule or Uniform()
        self.review, self.memory = review, memory
        self.consolidators = list(consolidators)
        self.objective = objective or CausalLMObjective(stream)
        self.steps = steps
        self.seed = int(trainer.args.seed if seed is None else seed)
        self.eval_batch_size = int(eval_batch_size)
        self.evaluate = evaluate
        self.penalties = [c for c in self.consolidators if _overrides(c, "penalty")]
        self._grad_hooks = [c for c in self.consolidators if _overrides(c, "after_backward")]
        self._step_hooks = [c for c in self.consolidators if _overrides(c, "after_step")]
        self.pool_schedule: PoolSchedule | None = None
        self.feedback_needed = False
        self.num_batches = 0
        self.task_seed = self.seed
        self.ctx: Any = None
        self._last_batch: Examples | None = None
        self._fb_step = 0
        self.result = RunResult(task_names=stream.task_names)
        trainer.data_collator = LMCollator()

    # -- pieces called from the Trainer ------------------------------------------------
    def _hook_optimizer(self, opt: torch.optim.Optimizer) -> None:
        if self.ctx is not None:
            self.ctx.optimizer = opt
        if self._grad_hooks:
            def pre(_opt, _args, _kwargs):
                for c in self._grad_hooks:
                    c.after_backward(self.ctx, self._batch_for_hooks())
            opt.register_step_pre_hook(pre)

        def post(_opt, _args, _kwargs):
            self.ctx.step += 1
            self.ctx.global_step += 1
            for c in self._step_hooks:
                c.after_step(self.ctx)
            self._maybe_quiz()
        opt.register_step_post_hook(post)

    def _maybe_quiz(self) -> None:
        """Every ``review.quiz_every`` optimiser steps, assess the review's held-out memory items.

        The engine loop's quiz, run on the Trainer's (unwrapped) model: per-task
        accuracy of the quiz items goes to ``review.update`` as ``scores``. The
        step is in the schedules' clock (batches drawn, i.e. optimiser steps x
        gradient accumulation). Quiz items are fixed at ``start`` and replicas
        are identical under DDP, so every rank computes the same scores without
        any collective call.
        """
        from lifelong.engine.loop import run_quiz

        ps = self.pool_schedule
        review = ps.review if ps is not None else None
        every = int(getattr(review, "quiz_every", 0) or 0) if review is not None else 0
        if not every or self.ctx.step % every:
            return
        accum = max(1, int(self.trainer.args.gradient_accumulation_steps))
        with torch.no_grad():
            run_quiz(review, self.memory, self.objective, self.trainer.model, self._device(), self.ctx.step * accum)

    def _batch_for_hooks(self):
        from lifelong.engine.context import Batch

        data = self._last_batch
        return Batch(data, data.size, torch.arange(data.size)) if data is not None else None

    def _feedback(self, trainer: Any, logits: Tensor, data: Examples, index: Tensor) -> None:
        losses = self.objective.per_sample_loss(logits, data).float()
        correct = self.objective.correct(logits, data)
        index = index.to(losses.device)
        if int(trainer.args.world_size) > 1:  # every rank must update its schedule with the same feedback
            gather = trainer.accelerator.gather
            losses, correct, index = gather(losses), gather(correct.long()).bool(), gather(index)
        index = index.cpu().long()
        self._fb_step += 1
        # groups are filled in per schedule (its own view) by PoolSchedule.update
        self.pool_schedule.update(Feedback(self._fb_step, index, losses.cpu(), correct.cpu()))

    # -- the stream ----------------------------------------------------------------------
    def _pool(self, task: Task) -> tuple[Examples, Tensor, int]:
        rows = Examples({f: task.train[f] for f in LM_FIELDS})
        tasks = torch.full((rows.size,), task.index, dtype=torch.long)
        if self.review is not None and self.memory is not None and len(self.memory) > 0:
            mem = self.memory.examples
            rows = Examples.cat([rows, Examples({f: mem[f] for f in LM_FIELDS})])
            tasks = torch.cat([tasks, mem["task"].long()])
        return rows, tasks, task.train.size

    @staticmethod
    def _task_view(task: Task, difficulty: Tensor | None) -> PoolView:
        """The curriculum's view of a task's rows: one group per value of its ``group``/``skill`` column, else one."""
        n = task.train.size
        for column in GROUP_COLUMNS:
            if column in task.train:
                col = task.train[column]
                if col.dim() != 1:
                    raise DataError(f"task '{task.name}': the '{column}' column must hold one group value per row "
                                    f"(shape ({n},)); got shape {tuple(col.shape)}.")
                values, codes = torch.unique(col, return_inverse=True)
                names = [f"{column}={v.item():g}" if values.is_floating_point() else f"{column}={v.item()}"
                         for v in values]
                return PoolView(n, codes.long(), len(names), difficulty, names, {"group_column": column})
        return PoolView(n, torch.zeros(n, dtype=torch.long), 1, difficulty, [task.name])

    def _device(self) -> torch.device:
        return next(self.trainer.model.parameters()).device

    def assess(self) -> list[float]:
        """Exact-match accuracy on every task's test set (a row of the accuracy matrix)."""
        model, device = self.trainer.model, self._device()
        return [self.objective.evaluate(model, t, device, self.eval_batch_size) for t in self.stream.tasks]

    def fit(self) -> RunResult:
        from lifelong.engine.config import TrainConfig
        from lifelong.engine.context import Context

        trainer, args, result = self.trainer, self.trainer.args, self.result
        t_run = time.perf_counter()
        if self.evaluate:
            result.baseline = self.assess()
        cfg = TrainConfig(batch_size=int(args.per_device_train_batch_size), lr=float(args.learning_rate),
                          device="cpu", seed=self.seed)
        self.ctx = Context(model=trainer.model, stream=self.stream, task=self.stream[0], objective=self.objective,
                           config=cfg, device=self._device(), memory=self.memory)
        for task in self.stream.tasks:
            ctx = self.ctx
            ctx.task, ctx.task_index, ctx.pool_tasks, ctx.step = task, task.index, [task.index], 0
            ctx.device = self._device()
            rows, tasks, n_task = self._pool(task)
            world = max(1, int(args.world_size))
            global_batch = int(args.per_device_train_batch_size) * world
            accum = max(1, int(args.gradient_accumulation_steps))
            if self.steps:
                total = int(self.steps)
            elif args.max_steps and args.max_steps > 0:
                total = int(args.max_steps)
            else:
                total = max(1, math.ceil(args.num_train_epochs * n_task / (global_batch * accum)))
            ctx.total_steps = total
            self.num_batches = total * accum
            self.task_seed = self.seed * 100_003 + task.index
            for c in self.consolidators:
                c.before_task(ctx)
            difficulty = task.train["difficulty"].float() if "difficulty" in task.train else None
            if self.schedule.needs_difficulty and difficulty is None:
                raise ConfigError(f"schedule '{self.schedule.name}' needs difficulty scores but task '{task.name}' "
                                  "has no 'difficulty' field.")
            view = self._task_view(task, difficulty)
            self.schedule.start(view, total * accum, seed=self.task_seed)
            review = self.review if rows.size > n_task else None
            if review is not None:
                mem_tasks = tasks[n_task:]
                review.start(PoolView(rows.size - n_task, mem_tasks, len(self.stream), None, self.stream.task_names),
                             total * accum, seed=self.task_seed + 7)
            self.pool_schedule = PoolSchedule(self.schedule, review, n_task)
            self.pool_schedule.start(PoolView(rows.size, tasks, len(self.stream), None, self.stream.task_names),
                                     total * accum, seed=self.task_seed)
            self.feedback_needed = self.pool_schedule.needs_feedback
            self._fb_step = 0
            trainer.train_dataset = PoolDataset(rows, tasks)
            trainer.args.max_steps = total
            trainer.optimizer, trainer.lr_scheduler = None, None
            t0 = time.perf_counter()
            trainer.train()
            result.task_seconds.append(time.perf_counter() - t0)
            result.task_steps.append(total)
            for c in self.consolidators:
                c.after_task(ctx)
            if self.memory is not None:
                mem = {f: task.train[f] for f in LM_FIELDS}
                mem["task"] = torch.full((task.train.size,), task.index, dtype=torch.long)
                self.memory.add(Examples(mem), ctx)
            log = self.pool_schedule.log()
            if log:
                result.schedule_log.append({"step": ctx.global_step, "task": task.index, **log})
            if self.evaluate:
                result.accuracy.append(self.assess())
                result.row_tasks.append(list(range(task.index + 1)))
        result.complete = True
        result.wall_seconds = time.perf_counter() - t_run
        return result


def _overrides(obj: Any, method: str) -> bool:
    from lifelong.consolidation.base import Consolidator

    return getattr(type(obj), method, None) is not getattr(Consolidator, method)


__all__ = ["ContinualTrainer", "LifelongTrainerMixin", "LMCollator", "PoolDataset", "PoolSchedule", "attach",
           "lifelong_trainer_class"]
