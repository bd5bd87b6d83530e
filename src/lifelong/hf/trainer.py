"""Make an existing ``transformers.Trainer`` (or any subclass, e.g. TRL's ``SFTTrainer``) learn continually.

A few lines turn a Trainer the user already configured into a continual learner::

    trainer = Trainer(model=model, args=TrainingArguments(...))
    learner = ContinualTrainer(trainer, stream, schedule=SCHEDULES.get("self-paced")(),
                               review=UniformReplay(0.3), memory=Reservoir(200),
                               consolidators=[EWC(lambda_=100)])
    result = learner.fit()          # RunResult: accuracy matrix, baseline, task times
    print(result.accuracy)

This is the second driver of the one teaching engine
(:class:`lifelong.engine.phase.Teacher`); ``lifelong run``'s loop is the first.
Every phase is set up, stepped and wrapped up by the engine -- pool, schedules,
review over memory with task ages, consolidators, memory with their extras,
assessment -- and the Trainer only runs the optimiser step. How it hooks in
(transformers 5.x), without copying the Trainer's loop:

* **data order**: ``get_train_dataloader`` returns a DataLoader whose batch
  sampler asks the engine for each batch (``Teacher.draw_indices``): the
  curriculum's rows of the pool followed by the review schedule's share of
  memory rows, exactly the batches ``lifelong run`` draws. Under DDP every rank
  draws the same global batch and keeps its slice, so the loader is not
  sharded again by accelerate;
* **loss**: ``compute_loss`` forms the engine's batch from the drawn indices and
  returns ``Teacher.loss`` (the objective's loss plus every consolidator's
  penalty); per-sample losses go back to the schedules when one asks for
  feedback (gathered across ranks). The Trainer scales it for gradient
  accumulation (``model_accepts_loss_kwargs`` is off for the wrapped Trainer);
* **step hooks**: consolidators' ``after_backward`` runs as a torch optimiser
  step pre-hook (after the Trainer's gradient clipping), and the engine's
  ``after_step`` (``after_step`` hooks, counters, quizzes of a spaced review
  every ``quiz_every`` steps, learning curves, step callbacks) as a post-hook;
* **tasks**: ``before_task``/``after_task``, the memory update and the row of
  the accuracy matrix around each task's ``trainer.train()``.

The training collator is :class:`LMCollator` (the data is already tokenised);
the user's own collator is kept for evaluation. An optimiser passed to the
Trainer (``optimizers=(opt, sched)``) is kept across tasks; otherwise the
Trainer builds one per task (the set of trainable parameters may change, e.g.
LoRA per task).
"""

from __future__ import annotations

import math
import os
import re
from typing import Any, Iterator, Sequence

import torch
from torch import Tensor
from torch.utils.data import Dataset, Sampler

from lifelong.curriculum.base import Feedback, ReviewSchedule, Schedule
from lifelong.curriculum.basic import Uniform
from lifelong.data.examples import Examples
from lifelong.data.task import Stream
from lifelong.engine.pool import task_examples
from lifelong.engine.result import RunResult
from lifelong.errors import ConfigError, RunStopped, require
from lifelong.hf.objective import LM_FIELDS, CausalLMObjective

INDEX, TASK = "lifelong_index", "lifelong_task"


# ----------------------------------------------------------------------------- data
class PoolDataset(Dataset):
    """The study pool as a map-style dataset: rows of ``Examples`` (in memory, or stored text gathered
    and padded per batch) plus their pool index and task."""

    def __init__(self, examples: Examples, tasks: Tensor):
        self.examples = examples.select(*LM_FIELDS)
        self.tasks = tasks.long()

    def __len__(self) -> int:
        return self.examples.size

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        row = {k: v[0] for k, v in self.__getitems__([i])[0].items()}
        return row

    def __getitems__(self, indices: list[int]) -> list[dict[str, Tensor]]:
        idx = torch.as_tensor(indices, dtype=torch.long)
        rows = self.examples.take(idx)
        cols = {k: rows[k] for k in LM_FIELDS}
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
class _EngineBatches(Sampler[list[int]]):
    """Batches of the pool dataset drawn by the engine: pool rows, then memory rows (offset by the task's rows)."""

    def __init__(self, learner: "ContinualTrainer", num_batches: int):
        self.learner, self.num_batches = learner, int(num_batches)

    def __iter__(self) -> Iterator[list[int]]:
        from lifelong.engine.checkpoint import set_rng_state

        cl = self.learner
        if cl.phase.rng is not None:  # undo the Trainer's own draws since the phase was set up
            set_rng_state(cl.phase.rng)
        for _ in range(self.num_batches):
            idx, r_idx = cl.teacher.draw_indices(cl.phase)
            yield idx.tolist() if r_idx is None else idx.tolist() + (r_idx + cl.phase.pool.size).tolist()

    def __len__(self) -> int:
        return self.num_batches


class LifelongTrainerMixin:
    """Overrides of ``Trainer`` methods; mixed in front of the user's Trainer class by :func:`attach`."""

    lifelong: "ContinualTrainer | None" = None

    def get_train_dataloader(self):  # type: ignore[override]
        cl = self.lifelong
        if cl is None or cl.phase is None:
            return super().get_train_dataloader()  # type: ignore[misc]
        from torch.utils.data import DataLoader

        # not prepared by accelerate: every rank already draws its own slice of the global batch
        return DataLoader(self.train_dataset, batch_sampler=_EngineBatches(cl, cl.num_batches),
                          collate_fn=self.data_collator, num_workers=0)

    def get_eval_dataloader(self, eval_dataset=None):  # type: ignore[override]
        cl = self.lifelong
        if cl is None:
            return super().get_eval_dataloader(eval_dataset)  # type: ignore[misc]
        train_collator, self.data_collator = self.data_collator, cl.eval_collator
        try:
            return super().get_eval_dataloader(eval_dataset)  # type: ignore[misc]
        finally:
            self.data_collator = train_collator

    def create_optimizer(self, model=None):  # type: ignore[override]
        opt = super().create_optimizer(model) if model is not None else super().create_optimizer()  # type: ignore[misc]
        cl = self.lifelong
        if cl is not None:
            from lifelong.engine.optim import regroup

            # the consolidators' parameter groups (slow learner's multipliers) reach the Trainer's optimiser
            opt = self.optimizer = regroup(opt, self.model if model is None else model, cl.consolidators)
            cl._hook_optimizer(opt)
        return opt

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # type: ignore[override]
        cl = self.lifelong
        index = inputs.pop(INDEX, None)
        inputs.pop(TASK, None)
        if cl is None or cl.phase is None or index is None or not model.training:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)  # type: ignore[misc]
        teacher, ph = cl.teacher, cl.phase
        index = index.cpu().long()
        new = index < ph.pool.size
        r_idx = index[~new] - ph.pool.size
        batch = teacher.take(ph, index[new], r_idx if len(r_idx) else None)
        step = teacher.loss(ph, batch, model=model)
        value = float(step.loss.detach())
        teacher.check_finite(ph, value)
        teacher.feedback(ph, step, batch)
        cl._last = (batch, value)
        return (step.loss, {"logits": step.out}) if return_outputs else step.loss


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
    # the engine's loss is a mean over the micro-batch: the Trainer must divide it by the accumulation steps
    trainer.model_accepts_loss_kwargs = False
    return trainer


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name))[:60] or "task"


def task_dataset(task: Any) -> Any:
    """A task's training rows as a ``datasets.Dataset``: unpadded ``input_ids`` and ``completion_mask``
    (1 where the labels are learned), the processed form TRL's SFTTrainer accepts."""
    datasets = require("datasets", "llm", "task_dataset")
    data = task.train
    ids, mask, labels = data["input_ids"], data["attention_mask"].bool(), data["labels"]
    return datasets.Dataset.from_dict({
        "input_ids": [row[m].tolist() for row, m in zip(ids, mask)],
        "completion_mask": [(lab[m] != -100).long().tolist() for lab, m in zip(labels, mask)],
    })


# ----------------------------------------------------------------------------- the driver
class ContinualTrainer:
    """Drive a Hugging Face Trainer through a stream of LM tasks with schedules, replay and consolidation.

    ``schedule`` orders the current task's data (default uniform); ``review``
    with ``memory`` replays earlier tasks; ``consolidators`` add penalties and
    gradient/parameter hooks; ``steps`` per task overrides the Trainer's
    ``max_steps`` (else ``args.max_steps``, else ``num_train_epochs`` passes).
    ``callbacks`` are lifelong callbacks (progress, logs) that observe the run.
    ``fit()`` returns a :class:`RunResult`.
    """

    def __init__(self, trainer: Any, stream: Stream, schedule: Schedule | None = None,
                 review: ReviewSchedule | None = None, memory: Any = None, consolidators: Sequence[Any] = (),
                 objective: CausalLMObjective | None = None, steps: int | None = None, seed: int | None = None,
                 eval_batch_size: int = 128, evaluate: bool = True, scorer: Any = None,
                 callbacks: Sequence[Any] = (), run_dir: str | os.PathLike | None = None, save_models: bool = False):
        from lifelong.engine.config import Recipe

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
        # the Recipe checks what the loop checks: a consolidator that needs memory has one
        self.recipe = Recipe(name="trainer", consolidators=self.consolidators, memory=memory, review=review,
                             curriculum=self.schedule, scorer=scorer)
        self.objective = objective or CausalLMObjective(stream)
        self.steps = steps
        self.seed = int(trainer.args.seed if seed is None else seed)
        self.eval_batch_size = int(eval_batch_size)
        self.evaluate = evaluate
        self.callbacks = list(callbacks)
        self._max_steps = int(trainer.args.max_steps or 0)
        self._user_optimizer = trainer.optimizer is not None
        self._hooked: set[int] = set()
        self.teacher: Any = None
        self.phase: Any = None
        self.pool_schedule: PoolSchedule | None = None
        self.num_batches = 0
        self._last: tuple[Any, float] | None = None
        self.eval_collator = trainer.data_collator
        trainer.data_collator = LMCollator()
        self.callbacks += self._one_run_for_report_to(trainer)
        self.run_dir = os.fspath(run_dir) if run_dir is not None else None
        self.save_models = bool(save_models)
        self._output_dir = str(trainer.args.output_dir)
        #: the Trainer's log rows of every task, with the task and the run's global step
        self.log_history: list[dict[str, Any]] = []

    @classmethod
    def build(cls, trainer_class: type, stream: Stream, *, schedule: Schedule | None = None,
              review: ReviewSchedule | None = None, memory: Any = None, consolidators: Sequence[Any] = (),
              objective: CausalLMObjective | None = None, steps: int | None = None, seed: int | None = None,
              eval_batch_size: int = 128, evaluate: bool = True, scorer: Any = None, callbacks: Sequence[Any] = (),
              run_dir: str | os.PathLike | None = None, save_models: bool = False,
              **trainer_kwargs: Any) -> "ContinualTrainer":
        """Construct ``trainer_class(**trainer_kwargs)`` for the stream and wrap it.

        For trainers that insist on a training dataset when they are built, such as TRL's
        ``SFTTrainer``: it is given the stream's first task (tokenised rows with their completion
        mask, which SFTTrainer takes as already processed), the data it is about to learn first --
        not a placeholder -- and the engine then hands it each task's pool in turn::

            learner = ContinualTrainer.build(SFTTrainer, stream, model=model, args=SFTConfig(...),
                                             processing_class=tokenizer, consolidators=[LwF()])
        """
        trainer_kwargs.setdefault("train_dataset", task_dataset(stream[0]))
        trainer = trainer_class(**trainer_kwargs)
        return cls(trainer, stream, schedule=schedule, review=review, memory=memory, consolidators=consolidators,
                   objective=objective, steps=steps, seed=seed, eval_batch_size=eval_batch_size, evaluate=evaluate,
                   scorer=scorer, callbacks=callbacks, run_dir=run_dir, save_models=save_models)

    @staticmethod
    def _one_run_for_report_to(trainer: Any) -> list[Any]:
        """The Trainer's ``report_to`` integrations (TensorBoard, MLflow, W&B...) fed by the engine instead:
        the Trainer's own would open one run per task whose step axis restarts at every task; fed through
        :class:`~lifelong.hf.callbacks.TrainerCallbackAdapter` they get one run, the run's global step and
        the accuracy matrix at every task end."""
        report_to = [r for r in (trainer.args.report_to or []) if r not in ("none", None)]
        if not report_to:
            return []
        from transformers.integrations import get_reporting_integration_callbacks

        from lifelong.hf.callbacks import TrainerCallbackAdapter

        for cls in get_reporting_integration_callbacks(report_to):
            trainer.remove_callback(cls)
        return [TrainerCallbackAdapter(report_to=report_to, args=trainer.args)]

    @property
    def driver(self) -> str:
        """``ContinualTrainer(<the user's Trainer class>)``, for messages and the run's config."""
        user = next(c for c in type(self.trainer).__mro__ if not issubclass(c, LifelongTrainerMixin))
        return f"ContinualTrainer({user.__name__})"

    @property
    def ctx(self):
        return self.teacher.ctx if self.teacher is not None else None

    @property
    def result(self) -> RunResult:
        return self.teacher.result if self.teacher is not None else RunResult(task_names=self.stream.task_names)

    # -- pieces called from the Trainer ------------------------------------------------
    def _hook_optimizer(self, opt: torch.optim.Optimizer) -> None:
        # after a first train(), a user's optimiser is wrapped by accelerate: the hooks go on the torch one
        while isinstance(getattr(opt, "optimizer", None), torch.optim.Optimizer):
            opt = opt.optimizer
        self.teacher.ctx.optimizer = opt
        if id(opt) in self._hooked:
            return
        self._hooked.add(id(opt))

        def pre(_opt, _args, _kwargs):
            if self.phase is not None and self._last is not None:
                self.teacher.after_backward(self._last[0])

        def post(_opt, _args, _kwargs):
            if self.phase is not None and self._last is not None:
                self.teacher.after_step(self.phase, self._last[1])
                if self.teacher.ctx.stop:  # a callback asked the run to stop: end this task's train() now
                    self.trainer.control.should_training_stop = True

        opt.register_step_pre_hook(pre)
        opt.register_step_post_hook(post)

    def _device(self) -> torch.device:
        return next(self.trainer.model.parameters()).device

    def assess(self) -> list[float]:
        """Exact-match accuracy on every task's test set (a row of the accuracy matrix)."""
        from lifelong.engine.phase import evaluate_tasks

        return evaluate_tasks(self.trainer.model, self.objective, self.stream.tasks, self._device(), self.eval_batch_size)

    def _total(self, pool_size: int) -> int:
        """Optimiser steps of a task: ``steps``, else the Trainer's ``max_steps``, else its epochs."""
        args = self.trainer.args
        if self.steps:
            return int(self.steps)
        if self._max_steps > 0:
            return self._max_steps
        global_batch = int(args.per_device_train_batch_size) * max(1, int(args.world_size))
        accum = max(1, int(args.gradient_accumulation_steps))
        return max(1, math.ceil(args.num_train_epochs * pool_size / (global_batch * accum)))

    def fit(self, resume_from_checkpoint: str | bool | None = None) -> RunResult:
        """Learn the stream task by task; return the :class:`RunResult`.

        With ``run_dir`` the run folder is the one ``lifelong run`` writes (config, metrics.json,
        CSVs, the engine's checkpoint at every task end, ``save_pretrained`` folders with
        ``save_models``), so ``lifelong report`` and ``lifelong runs`` read it.
        ``resume_from_checkpoint=True`` (or a checkpoint path) continues a killed run from its last
        finished task: memory, consolidators, schedules, RNGs and results are restored and the
        interrupted task is learned again from its start, giving the accuracy matrix of an
        uninterrupted run."""
        from lifelong.engine import checkpoint as ckpt
        from lifelong.engine.config import TrainConfig
        from lifelong.engine.phase import Teacher

        trainer, args = self.trainer, self.trainer.args
        accum = max(1, int(args.gradient_accumulation_steps))
        device = self._device()
        world = max(1, int(args.world_size))  # the engine counts the global batch
        cfg = TrainConfig(batch_size=int(args.per_device_train_batch_size) * world, lr=float(args.learning_rate),
                          device=str(device), seed=self.seed, eval_batch_size=self.eval_batch_size, log_every=0,
                          gradient_accumulation_steps=accum)
        self.teacher = teacher = Teacher(self.stream, trainer.model, self.recipe, cfg, self.objective,
                                         self.callbacks, device=device, assess=self.evaluate)
        teacher.driver = self.driver
        state = self._resume_state(resume_from_checkpoint)
        rd = self._run_folder(resume=bool(resume_from_checkpoint))
        teacher.start_run(state)
        if state is not None and state.get("optimizer") is not None and self._user_optimizer:
            trainer.optimizer.load_state_dict(state["optimizer"])
        if self._user_optimizer:
            self._hook_optimizer(trainer.optimizer)
        base_dir = self._output_dir
        try:
            for index in range(teacher.first_phase, len(teacher.phases)):
                ph = teacher.start_phase(index, build_optimizer=False, total_steps=self._total)
                self.phase, self.num_batches = ph, ph.total * accum
                self.pool_schedule = PoolSchedule(teacher.curriculum, self.review if ph.reviewing else None,
                                                  ph.pool.size)
                trainer.train_dataset = self._dataset(ph)
                trainer.args.max_steps = ph.total
                # checkpoints of the Trainer (save_strategy) go to one folder per task: none overwrites another's
                trainer.args.output_dir = os.path.join(base_dir, f"task-{index}-{_safe(ph.task.name)}")
                if not self._user_optimizer:
                    trainer.optimizer, trainer.lr_scheduler = None, None
                trainer.train()
                if teacher.ctx.stop:
                    raise RunStopped(teacher.ctx.stop)
                if int(trainer.state.global_step) < ph.total:  # a TrainerCallback ended this task's train() early
                    raise RunStopped(f"training stopped in task '{ph.task.name}' after {trainer.state.global_step} "
                                            f"of {ph.total} steps (control.should_training_stop); results so far kept")
                offset = teacher.ctx.global_step - ph.total
                self.log_history.extend({**row, "task": index, "run_step": offset + int(row.get("step", 0))}
                                        for row in trainer.state.log_history)
                self._last = None
                teacher.end_phase(ph)
                if rd is not None:
                    self._save_task(rd, ph, ckpt.capture(teacher, ph, phase_done=True))
                self.phase = None
        except (Exception, KeyboardInterrupt) as exc:
            exc.result = teacher.finish(exc)  # type: ignore[attr-defined]
            if rd is not None:
                rd.write_result(exc.result)  # type: ignore[attr-defined]
            raise
        finally:
            trainer.args.max_steps = self._max_steps
            trainer.args.output_dir = base_dir
        result = teacher.finish()
        if rd is not None:
            rd.write_result(result)
        return result

    # -- run folder and resume -----------------------------------------------------------
    def _resume_state(self, resume: str | bool | None) -> dict[str, Any] | None:
        from lifelong.engine.checkpoint import load_checkpoint

        if not resume:
            return None
        if resume is True:
            if self.run_dir is None:
                raise ConfigError("resume_from_checkpoint=True needs the run folder: pass run_dir= to ContinualTrainer "
                                  "(or give the checkpoint's path).")
            path = os.path.join(self.run_dir, "checkpoints", "last.pt")
            if not os.path.exists(path):
                return None  # killed before its first task ended: start from the beginning
        else:
            path = str(resume)
        state = load_checkpoint(path)
        if int(state["step"]) != 0:
            raise ConfigError(f"{path} was taken in the middle of a task (by `lifelong run`'s loop); ContinualTrainer "
                              "resumes from task ends. Resume it with `lifelong run --resume`, or give a task-end "
                              "checkpoint.")
        return state

    def _run_folder(self, resume: bool):
        if self.run_dir is None:
            return None
        from lifelong.runs import RunDir

        rd = RunDir(self.run_dir, resume=resume and os.path.isdir(self.run_dir))
        rd.write_config(self.describe())
        return rd

    def _save_task(self, rd: Any, ph: Any, state: dict[str, Any]) -> None:
        from lifelong.engine.checkpoint import save_checkpoint

        save_checkpoint(state, rd.checkpoint_dir / "last.pt")
        rd.write_result(self.teacher.result)
        if self.save_models:
            folder = rd.path / "models" / f"task-{ph.index}-{_safe(ph.task.name)}"
            # safetensors weights; a PEFT model writes its adapters only
            self.trainer.model.save_pretrained(str(folder), safe_serialization=True)

    def describe(self) -> dict[str, Any]:
        """The run's settings as plain data, written as the run folder's ``config.yaml``."""
        args = self.trainer.args
        strategy = [{"name": getattr(c, "name", type(c).__name__)} for c in self.consolidators]
        if self.review is not None:
            strategy.append({"name": self.review.name})
        return {
            "name": os.path.basename(os.path.normpath(self.run_dir)) if self.run_dir else None,
            "driver": self.driver,
            "benchmark": {"name": self.stream.name, "tasks": self.stream.task_names},
            "strategy": strategy or [{"name": "naive"}],
            "curriculum": {"name": self.schedule.name},
            "memory": {"policy": self.memory.name, "size": self.memory.capacity} if self.memory is not None else None,
            "seed": self.seed,
            "train": {"lr": float(args.learning_rate), "batch_size": int(args.per_device_train_batch_size),
                      "gradient_accumulation_steps": int(args.gradient_accumulation_steps),
                      "max_grad_norm": float(args.max_grad_norm or 0.0),
                      "lr_scheduler": str(getattr(args.lr_scheduler_type, "value", args.lr_scheduler_type)),
                      "steps": self.steps or self._max_steps or None},
        }

    def _dataset(self, ph) -> "PoolDataset":
        """The phase's pool rows followed by the memory rows, as the Trainer's training dataset."""
        parts = [task_examples(self.stream[i], LM_FIELDS) for i in ph.tasks]
        if ph.reviewing:
            parts.append(self.memory.examples.select(*LM_FIELDS, "task"))
        rows = Examples.cat(parts) if len(parts) > 1 else parts[0]
        return PoolDataset(rows, rows["task"])


__all__ = ["ContinualTrainer", "LifelongTrainerMixin", "LMCollator", "PoolDataset", "PoolSchedule", "attach",
           "lifelong_trainer_class", "task_dataset"]
