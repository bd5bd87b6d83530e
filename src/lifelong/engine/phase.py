"""The teaching logic, written once: a phase's set-up, its step, its wrap-up.

A *phase* is one stretch of training on one study pool: task t of a sequential
stream, tasks 0..t of a cumulative one, every task at once for joint training.
:class:`Teacher` holds what lives across phases (model, recipe, objective,
memory, results) and answers, for both drivers:

* :meth:`Teacher.start_phase` -- classes seen, head growth, pool and its view,
  difficulty scores, the curriculum and its sampler, review over memory with
  task ages, consolidators' ``before_task``, the optimiser;
* :meth:`Teacher.draw` / :meth:`Teacher.take` -- the next batch (curriculum rows
  plus the review schedule's share of memory rows);
* :meth:`Teacher.loss` -- forward, loss (per-sample when a schedule wants
  feedback) plus consolidator penalties;
* :meth:`Teacher.after_backward` and :meth:`Teacher.after_step` -- gradient
  hooks; then step count, ``after_step`` hooks, feedback, quizzes, score
  refresh, logs, learning curves and step callbacks;
* :meth:`Teacher.end_phase` -- ``after_task``, memory update with the
  consolidators' extras, the assessment row, probes, logs.

A driver decides only who runs the optimiser step: :func:`lifelong.engine.loop.train_stream`
does it itself, :class:`lifelong.hf.trainer.ContinualTrainer` lets a
``transformers.Trainer`` do it and calls the same methods from its hooks.
Checkpoint state is captured and restored by :mod:`lifelong.engine.checkpoint`.
"""

from __future__ import annotations

import math
import random
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, Callable, ContextManager, Iterable

import numpy as np
import torch
from torch import Tensor, nn

from lifelong.curriculum.base import Feedback, PoolView
from lifelong.curriculum.basic import Uniform
from lifelong.curriculum.mixture import general_mixture, token_count
from lifelong.curriculum.sampler import ScheduleSampler
from lifelong.data.examples import Examples
from lifelong.data.task import Stream, Task
from lifelong.engine.callbacks import Callback
from lifelong.engine.config import Recipe, TrainConfig
from lifelong.engine.context import Batch, Context
from lifelong.engine.distributed import gather_feedback, world_size, wrap
from lifelong.engine.objective import ClassificationObjective
from lifelong.engine.optim import make_lr_scheduler, make_optimizer
from lifelong.engine.pool import Pool, task_examples
from lifelong.engine.resources import PeakMemory
from lifelong.engine.result import RunResult
from lifelong.errors import ConfigError, LifelongError, TrainingError


# ----------------------------------------------------------------------------- helpers
def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (model initialisation, dropout)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise LifelongError(f"device '{name}' is not a valid device; use auto, cpu, cuda, cuda:N or mps.") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise LifelongError(f"device '{name}' was asked for but CUDA is not available here; use device: auto or cpu.")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise LifelongError(f"device '{name}' does not exist: this machine has {torch.cuda.device_count()} CUDA "
                            "device(s); use device: auto, cuda or cuda:N with a smaller N.")
    return dev


def make_objective(stream: Stream, model: nn.Module, config: TrainConfig | None = None, **kwargs: Any):
    """The objective for a stream's kind: classification or causal language modelling; with
    ``config.objective`` remax/reinforce, the policy-gradient objective of :mod:`lifelong.hf.rl`."""
    if config is not None and config.objective != "sft":
        from lifelong.hf.rl import PolicyGradientObjective

        if stream.kind != "lm":
            raise ConfigError(f"train.objective {config.objective} trains language models; stream '{stream.name}' "
                              f"is '{stream.kind}'. Use train.objective: sft.")
        return PolicyGradientObjective.from_config(stream, config.objective, config.rl, **kwargs)
    if stream.kind == "lm":
        from lifelong.hf.objective import CausalLMObjective

        return CausalLMObjective(stream, **kwargs)
    return ClassificationObjective(stream)


def evaluate_tasks(model: nn.Module, objective, tasks: Iterable[Task], device: torch.device,
                   batch_size: int, baseline: bool = False) -> list[float]:
    return [objective.evaluate(model, t, device, batch_size, baseline=baseline) for t in tasks]


def phase_pools(stream: Stream, recipe: Recipe) -> list[list[int]]:
    """Which tasks form the pool of each phase."""
    n = len(stream)
    if recipe.pool == "joint":
        return [list(range(n))]
    if recipe.pool == "cumulative":
        return [list(range(i + 1)) for i in range(n)]
    return [[i] for i in range(n)]


def task_ages(result: RunResult, phases: list[list[int]], n_tasks: int) -> list[float]:
    """Steps since each task was last studied in a finished phase (inf if never):
    phase i studied the tasks of its pool, ``phases[i]``."""
    ends = [sum(result.task_steps[: i + 1]) for i in range(len(result.task_steps))]
    now = ends[-1] if ends else 0
    ages = [float("inf")] * n_tasks
    for i, end in enumerate(ends):
        for j in phases[i]:
            ages[j] = float(now - end)
    return ages


def reinitialise(model: nn.Module) -> None:
    for m in model.modules():
        if m is not model and hasattr(m, "reset_parameters"):
            m.reset_parameters()


def params_changed(optimizer: torch.optim.Optimizer, model: nn.Module) -> bool:
    in_opt = {id(p) for g in optimizer.param_groups for p in g["params"]}
    return in_opt != {id(p) for p in model.parameters() if p.requires_grad}


@torch.no_grad()
def run_quiz(review, memory, objective, model: nn.Module, device: torch.device, step: int) -> None:
    """Assess the review schedule's held-out quiz items and feed the per-task
    scores back (``Feedback.scores``)."""
    idx = review.quiz_indices()
    if idx is None or len(idx) == 0:
        return
    was = model.training
    model.eval()
    data = memory.examples.take(idx).to(device)
    correct = objective.correct(objective.forward(model, data), data).float().cpu()
    model.train(was)
    groups = memory.examples["task"][idx].long()
    scores = {int(g): float(correct[groups == g].mean()) for g in torch.unique(groups)}
    review.update(Feedback(step, indices=idx, correct=correct.bool(), groups=groups, scores=scores))


def diverged_message(value: float, task: Task, step: int, global_step: int, lr: float) -> str:
    """What a run whose loss became NaN/inf says (the loop's and the vectorised runs')."""
    return (f"the loss became {value} in task '{task.name}' (#{task.index}) at step {step} (run step {global_step}). "
            "The learning rate is probably too high: continue from the last checkpoint with a smaller one, e.g. "
            f"`lifelong run --resume RUN_DIR --lr {lr / 10:g}`, and/or gradient clipping (`--set train.grad_clip=1.0`); "
            "also check the inputs for NaN. Results so far and the checkpoints (task ends, every "
            "train.checkpoint_every steps) were kept.")


#: per-sample columns of a task's training rows that split it into groups (skills) for the curriculum, first found wins
GROUP_COLUMNS = ("group", "skill")


def _group_column(task: Task) -> str | None:
    return next((c for c in GROUP_COLUMNS if c in task.train), None)


def task_view(task: Task, difficulty: Tensor | None = None) -> PoolView:
    """The curriculum's view of one task's rows: one group per value of its ``group``/``skill``
    column (so a teacher chooses among the skills within a task), else a single group."""
    from lifelong.errors import DataError

    n, column = task.train.size, _group_column(task)
    if column is None:
        return PoolView(n, torch.zeros(n, dtype=torch.long), 1, difficulty, [task.name])
    col = task.train[column]
    if col.dim() != 1:
        raise DataError(f"task '{task.name}': the '{column}' column must hold one group value per row "
                        f"(shape ({n},)); got shape {tuple(col.shape)}.")
    values, codes = torch.unique(col, return_inverse=True)
    names = [f"{column}={v.item():g}" if values.is_floating_point() else f"{column}={v.item()}" for v in values]
    return PoolView(n, codes.long(), len(names), difficulty, names, {"group_column": column})


# ----------------------------------------------------------------------------- one phase
@dataclass
class Phase:
    """The live state of one phase; built by :meth:`Teacher.start_phase`."""

    index: int
    tasks: list[int]
    task: Task
    pool: Pool
    view: PoolView
    #: optimiser steps of the phase; the schedules see ``total * gradient_accumulation_steps`` batches
    total: int
    seed: int
    sampler: ScheduleSampler
    review_sampler: ScheduleSampler | None
    wants_feedback: bool
    optimizer: torch.optim.Optimizer | None
    #: the learning-rate schedule (None: constant rate, or the driver's own)
    lr_scheduler: Any = None
    #: the model for the forward pass: the run's, or its DistributedDataParallel wrapper under torchrun
    forward_model: Any = None
    #: training seconds of this phase so far (evaluation, quizzes and checkpoint writes excluded)
    train_seconds: float = 0.0
    #: seconds spent assessing during this phase (learning curves, quizzes, score refreshes)
    assess_seconds: float = 0.0
    peak: PeakMemory | None = None
    started: float = field(default_factory=time.perf_counter)
    #: the RNG states when training begins (a driver whose own set-up draws random numbers, such as the
    #: Trainer's, restores them so dropout and methods' samples follow the same stream in both drivers)
    rng: dict[str, Any] | None = None

    @property
    def reviewing(self) -> bool:
        return self.review_sampler is not None


@dataclass
class StepOutput:
    """What one forward pass produced: model output, per-sample losses (when a
    schedule wants feedback) and the total loss with penalties."""

    out: Tensor
    losses: Tensor | None
    loss: Tensor


class Teacher:
    """The teaching logic of one run, shared by both drivers."""

    def __init__(self, stream: Stream, model: nn.Module, recipe: Recipe | None = None,
                 config: TrainConfig | None = None, objective: Any = None, callbacks: Iterable[Callback] = (),
                 device: torch.device | None = None, assess: bool = True):
        self.recipe = recipe or Recipe()
        #: whether to measure the accuracy matrix (baseline, a row per phase, probes)
        self.assess = assess
        self.cfg = config or TrainConfig()
        stream.validate()
        self.stream = stream
        from lifelong.engine import distributed

        self.world = world_size() if distributed.join_from_env(self.cfg.device) else 1
        #: this process's rank (0 alone): seeds what each process draws on its own
        self.rank = distributed.rank()
        if self.cfg.batch_size % self.world:
            raise LifelongError(f"train.batch_size {self.cfg.batch_size} is the global batch and must divide "
                                f"between the {self.world} processes; use a multiple of {self.world}.")
        #: rows each process draws per batch (the global batch split between the processes)
        self.rank_batch = self.cfg.batch_size // self.world
        if device is None and self.world > 1 and resolve_device(self.cfg.device).type == "cuda":
            device = torch.device("cuda", torch.cuda.current_device())
        self.device = device if device is not None else resolve_device(self.cfg.device)
        model.to(self.device)
        self.model = model
        self.objective = objective or make_objective(stream, model, self.cfg)
        #: the objective's policy-gradient loss (:mod:`lifelong.hf.rl`), or None for its own loss
        self.policy = getattr(self.objective, "policy_losses", None)
        if self.cfg.objective != "sft" and self.policy is None:
            raise ConfigError(f"train.objective is {self.cfg.objective} but the objective given, "
                              f"{type(self.objective).__name__}, has no policy-gradient loss; pass "
                              "lifelong.hf.rl.PolicyGradientObjective or leave objective= unset.")
        self.callbacks = list(callbacks)
        self.step_callbacks = [c for c in self.callbacks if type(c).on_step_end is not Callback.on_step_end]
        self.curriculum = self.recipe.curriculum or Uniform()
        self.review, self.memory = self.recipe.review, self.recipe.memory
        self.consolidators = list(self.recipe.consolidators)
        self.phases = phase_pools(stream, self.recipe)
        #: the general corpus mixed into every batch (``stream.info["general"]``), or None; each process
        #: draws its own general rows (its own seed), as it draws its own share of the pool
        self.mixture = general_mixture(stream, seed=self.cfg.seed + 7_919 * self.rank)
        if self.policy is not None and self.world > 1:
            raise ConfigError(f"train.objective {self.cfg.objective} runs in one process only for now ({self.world} "
                              "processes were started): its policy loss forwards the model twice per step, which "
                              "DistributedDataParallel does not allow before one backward. Launch it without "
                              "torchrun/accelerate, or use train.objective: sft across processes.")
        if self.policy is not None and self.mixture is not None:
            raise ConfigError("a policy-gradient objective needs prompt/answer rows, but this stream mixes general "
                              "text into every batch (benchmark params 'general'); use train.objective: sft with "
                              "a general mixture, or remove the mixture.")
        self.memory_fields = tuple(dict.fromkeys(f for c in self.consolidators for f in c.memory_fields))
        self.mean_loss = getattr(self.objective, "loss", None) or \
            (lambda o, d: self.objective.per_sample_loss(o, d).mean())
        self.result = RunResult(task_names=stream.task_names)
        self.amp_dtype = self._precision()
        self.scaler = torch.amp.GradScaler("cuda") if self.amp_dtype == torch.float16 else None
        if self.cfg.gradient_checkpointing:
            # transformers >= 5 names it activation checkpointing; older releases gradient checkpointing
            if hasattr(model, "activation_checkpointing_enable"):
                model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
            elif hasattr(model, "gradient_checkpointing_enable"):
                model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            else:
                raise LifelongError(f"train.gradient_checkpointing needs a model that supports it (Hugging Face "
                                    f"models do); {type(model).__name__} does not. Set it to false.")
        self.ctx = Context(model=model, stream=stream, task=stream[self.phases[0][-1]], objective=self.objective,
                           config=self.cfg, device=self.device, memory=self.memory, num_phases=len(self.phases))
        #: who runs the optimiser step, for messages
        self.driver = "lifelong's loop"
        #: the checkpoint being resumed from, until its phase has been set up
        self.resume: dict[str, Any] | None = None
        self.first_phase = 0
        self._t_run = time.perf_counter()
        self._weights_norm0: float | None = None

    # -- the run ------------------------------------------------------------------------
    def start_run(self, resume: dict[str, Any] | None = None) -> None:
        """Restore a checkpoint (``resume``) or measure the untrained model; tell callbacks the stream starts."""
        from lifelong.engine import checkpoint

        if resume is not None:
            checkpoint.restore_run(self, resume)
            self.resume, self.first_phase = resume, int(resume["phase"])
            self.ctx.task = self.stream[self.phases[min(self.first_phase, len(self.phases) - 1)][-1]]
            self._t_run -= self.result.wall_seconds
        elif self.assess and self.stream.scenario != "class":
            # b_j, the untrained model's accuracy, for forward transfer. Not in the class-incremental
            # scenario: there a task's classes are unreachable before it is learned (R[j-1][j] = 0), so
            # forward transfer would only measure chance; it is reported as undefined instead.
            self.result.baseline = evaluate_tasks(self.model, self.objective, self.stream.tasks, self.device,
                                                  self.cfg.eval_batch_size, baseline=True)
        if resume is None and self.assess:
            self.probe()
            self.record_validation(None)  # step 0: the general loss before continual training, the baseline
        self._weights_norm0 = _weights_norm(self.model)
        for cb in self.callbacks:
            cb.on_stream_start(self.ctx, self.result)

    def elapsed(self) -> float:
        return time.perf_counter() - self._t_run

    def finish(self, exc: BaseException | None = None) -> RunResult:
        """Close the run: wall time, a note on why it stopped, callbacks' ``on_stream_end``."""
        result = self.result
        result.wall_seconds = self.elapsed()
        if exc is None:
            result.complete = True
        elif isinstance(exc, KeyboardInterrupt):
            result.notes.append("interrupted; continue with `lifelong run --resume RUN_DIR`")
        else:
            result.notes.append(str(exc))
        for cb in self.callbacks:
            cb.on_stream_end(self.ctx, result)
        return result

    def probe(self) -> None:
        """Append the objective's probes (if it has any) for the current model."""
        probes = getattr(self.objective, "probes", None)
        if probes is None:
            return
        for name, value in probes(self.model, self.stream, self.device, self.cfg.eval_batch_size).items():
            self.result.probes.setdefault(name, []).append(float(value))

    def _precision(self) -> torch.dtype | None:
        """The autocast dtype of ``train.precision`` (None = fp32), refusing what the device cannot do."""
        cfg, kind = self.cfg, self.device.type
        precision = cfg.precision
        if precision == "auto":
            if not cfg.amp:
                return None
            if kind != "cuda":
                self.result.notes.append(f"train.amp only acts on CUDA; it was ignored on {kind}. Set train.precision: "
                                         "bf16 for bf16 autocast on this device.")
                import warnings

                warnings.warn(self.result.notes[-1], stacklevel=3)
                return None
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        if precision == "fp32":
            return None
        if precision == "fp16" and kind != "cuda":
            raise LifelongError(f"train.precision fp16 needs CUDA (a gradient scaler); this run is on {kind}. "
                                "Use train.precision: bf16 (autocast on CPU too) or fp32.")
        if precision == "bf16" and kind not in ("cuda", "cpu"):
            raise LifelongError(f"train.precision bf16 is supported on CUDA and CPU, not on {kind}; use fp32.")
        return torch.bfloat16 if precision == "bf16" else torch.float16

    def autocast(self) -> ContextManager:
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def planned_steps(self, index: int) -> int:
        """Optimiser steps of phase ``index`` by ``train.steps`` or ``train.epochs`` (before it is set up)."""
        if self.cfg.steps > 0:
            return self.cfg.steps
        size = sum(self.stream[i].train.size for i in self.phases[index])
        if self.recipe.pool == "memory":
            seen = sum(self.stream[i].train.size for i in range(self.phases[index][-1] + 1))
            size = min(self.memory.capacity, seen)
        return self._steps_for(size)

    def _steps_for(self, pool_size: int) -> int:
        """Optimiser steps of a phase over a pool of ``pool_size`` rows: ``train.steps``, else
        ``train.epochs`` passes of batches, ``gradient_accumulation_steps`` batches a step."""
        cfg = self.cfg
        if cfg.steps > 0:
            return cfg.steps
        return math.ceil(cfg.epochs * math.ceil(pool_size / cfg.batch_size) / cfg.gradient_accumulation_steps)

    # -- 1. set up ----------------------------------------------------------------------
    def start_phase(self, index: int, build_optimizer: bool = True,
                    total_steps: Callable[[int], int] | None = None) -> Phase:
        """Set phase ``index`` up (restoring a mid-phase checkpoint's own state when resuming).

        ``total_steps(pool_size)`` gives the phase's number of batches when the
        driver plans them (the Trainer); by default ``train.steps`` or
        ``train.epochs`` passes over the pool. ``build_optimizer=False`` leaves
        the optimiser to the driver (it must set ``ctx.optimizer``)."""
        stream, recipe, cfg, ctx, model = self.stream, self.recipe, self.cfg, self.ctx, self.model
        resume = self.resume if self.resume is not None and index == self.first_phase \
            and int(self.resume["step"]) > 0 else None
        tasks = self.phases[index]
        pool_tasks = [stream[i] for i in tasks]
        task = pool_tasks[-1]
        seen = sorted({c for t in stream.tasks[: task.index + 1] for c in t.classes}
                      | {c for t in pool_tasks for c in t.classes})
        ctx.task, ctx.phase, ctx.pool_tasks, ctx.seen_classes = task, index, tasks, seen
        ctx.step = int(resume["step"]) if resume is not None else 0
        ctx.device = self.device
        self.objective.begin_task(stream, task, seen)
        memory = self.memory
        if recipe.pool == "memory" and resume is None:
            memory.add(task_examples(task, self.objective.model_fields), ctx)
        if recipe.reinit and resume is None:
            reinitialise(model)
        if hasattr(model, "adapt"):
            model.adapt(seen)
            model.to(self.device)
        if recipe.pool == "memory":
            pool = Pool([], self.objective.model_fields, self.device, memory_examples=memory.examples)
            view = pool.view(num_groups=len(stream), group_names=stream.task_names)
        else:
            pool = Pool(pool_tasks, self.objective.model_fields, self.device)
            view = task_view(task) if len(pool_tasks) == 1 and _group_column(task) else pool.view()
        for c in self.consolidators:
            c.before_task(ctx)
        optimizer = None
        if build_optimizer:
            if ctx.optimizer is None or cfg.reset_optimizer or params_changed(ctx.optimizer, model):
                ctx.optimizer = make_optimizer(model, cfg, self.consolidators)
            optimizer = ctx.optimizer
        total = int(total_steps(pool.size)) if total_steps is not None else self._steps_for(pool.size)
        ctx.total_steps = total
        batches = total * cfg.gradient_accumulation_steps
        lr_scheduler = None
        if optimizer is not None:
            if cfg.lr_scheduler_scope == "stream":
                lr_scheduler = make_lr_scheduler(optimizer, cfg, sum(self.planned_steps(i) for i in
                                                                     range(len(self.phases))), ctx.global_step)
            else:
                lr_scheduler = make_lr_scheduler(optimizer, cfg, total, ctx.step)
        seed = cfg.seed * 100_003 + index
        if self.curriculum.needs_difficulty or recipe.scorer is not None:
            view.difficulty = resume["difficulty"] if resume is not None and resume.get("difficulty") is not None \
                else self._difficulty(pool_tasks)
            for cb in self.callbacks:
                cb.on_scores(ctx, view.difficulty, pool.item_tasks())
        self.curriculum.start(view, batches, seed=seed)
        sampler = ScheduleSampler(self.curriculum, self.rank_batch, seed=seed)
        if self.mixture is not None:
            self.mixture.start(batches)
        review_sampler = None
        if self.review is not None and memory is not None and len(memory) > 0:
            # groups are copied: memory.add rewrites the buffer in place at the task end
            mem_view = PoolView(len(memory), memory.examples["task"].long().clone(), len(stream), None,
                                stream.task_names, {"ages": task_ages(self.result, self.phases, len(stream))})
            self.review.start(mem_view, batches, seed=seed + 7)
            review_sampler = ScheduleSampler(self.review, self.rank_batch, seed=seed + 7)
        ph = Phase(index=index, tasks=tasks, task=task, pool=pool, view=view, total=total, seed=seed,
                   sampler=sampler, review_sampler=review_sampler, optimizer=optimizer, lr_scheduler=lr_scheduler,
                   wants_feedback=self.curriculum.needs_feedback or
                   (review_sampler is not None and self.review.needs_feedback) or
                   (self.mixture is not None and self.mixture.needs_feedback))
        if resume is not None:
            from lifelong.engine import checkpoint

            checkpoint.restore_phase(self, ph, resume)
        if build_optimizer:  # the loop's forward; the Trainer wraps the model itself
            ph.forward_model = wrap(model, self.device)
        self.resume = None
        for cb in self.callbacks:
            cb.on_task_start(ctx)
        model.train()
        from lifelong.engine.checkpoint import rng_state

        ph.rng = rng_state()
        ph.peak = PeakMemory(self.device)
        ph.started = time.perf_counter()
        return ph

    def _difficulty(self, tasks: list[Task]) -> Tensor:
        scorer = self.recipe.scorer
        if scorer is None:
            missing = [t.name for t in tasks if "difficulty" not in t.train]
            if missing:
                raise LifelongError(
                    f"the curriculum needs difficulty scores but task(s) {missing} have no 'difficulty' field; "
                    "set curriculum.scorer (e.g. loss, transfer, length) or add a difficulty column to the data.")
            return torch.cat([t.train["difficulty"].float() for t in tasks])
        return torch.cat([scorer.score(t, self.ctx).float().cpu() for t in tasks])

    # -- 2. a step ----------------------------------------------------------------------
    def draw_indices(self, ph: Phase) -> tuple[Tensor, Tensor | None]:
        """The next batch's pool indices (by the curriculum) and memory slots (by the review schedule)."""
        drawn = ph.sampler.step  # the schedules' clock: batches drawn in this phase
        idx = ph.sampler.next_batch()
        if ph.review_sampler is None:
            return idx, None
        frac = float(self.review.fraction(drawn))
        n_rev = int(round(self.rank_batch * frac / (1.0 - frac))) if frac > 0 else 0
        return idx, (ph.review_sampler.next_batch(n_rev) if n_rev > 0 else None)

    def take(self, ph: Phase, idx: Tensor, r_idx: Tensor | None) -> Batch:
        """The batch of pool rows ``idx``, then memory rows ``r_idx``, then the general mixture's rows
        (a share of the batch's tokens, :mod:`lifelong.curriculum.mixture`), on the device."""
        new = ph.pool.take(idx)
        fields = (*self.objective.model_fields, "task")
        replay, parts = None, [new]
        if r_idx is not None:
            replay = self.memory.examples.take(r_idx).to(self.device)
            parts.append(Examples({k: replay[k].to(new[k].dtype) for k in fields}))
        g_idx = None
        if self.mixture is not None:
            g_idx = self.mixture.draw(sum(token_count(p) for p in parts), ph.sampler.step)
            if g_idx is not None:
                parts.append(self.mixture.rows(g_idx, new, fields, ph.task.index))
        if len(parts) == 1:
            return Batch(new, len(idx), idx)
        # Examples.cat right-pads text batches of different widths (stored text is padded per batch)
        data = Examples.cat([new.select(*fields), *parts[1:]])
        return Batch(data, len(idx), idx, replay, r_idx, g_idx)

    def draw(self, ph: Phase) -> Batch:
        return self.take(ph, *self.draw_indices(ph))

    def loss(self, ph: Phase, batch: Batch, model: nn.Module | None = None) -> StepOutput:
        """Forward ``batch`` through ``model`` (default: the run's; a driver may pass its wrapped
        model), the task loss and every consolidator's penalty."""
        model = model if model is not None else (ph.forward_model or self.model)
        out = self.objective.forward(model, batch.data)
        if self.policy is not None and self.objective.policy_active(self.ctx.step):
            # after the warm-up: the policy gradient trains; schedules still get the supervised losses
            seed = (ph.seed * 1_000_003 + ph.sampler.step) * 1_009 + self.rank
            loss = self.policy(model, out, batch.data, seed).mean()
            losses = self.objective.per_sample_loss(out, batch.data) if ph.wants_feedback else None
        elif ph.wants_feedback:
            losses = self.objective.per_sample_loss(out, batch.data)
            loss = losses.mean()
        else:  # the fused mean is cheaper when nobody needs per-sample losses
            losses, loss = None, self.mean_loss(out, batch.data)
        check = self.ctx.step == 0 and ph.sampler.step <= self.cfg.gradient_accumulation_steps
        for c in self.consolidators:
            extra = c.penalty(self.ctx, batch, out)
            if check:
                self._check_penalty(ph, c, extra)
            if extra is not None:
                loss = loss + extra
        return StepOutput(out, losses, loss)

    def _check_penalty(self, ph: Phase, c: Any, extra: Tensor | None) -> None:
        """No silent no-ops: a method that should add a penalty in this phase adds one that trains."""
        if not c.expects_penalty(self.ctx):
            return
        if extra is None:
            cause = "its penalty returned nothing"
        elif not extra.requires_grad:
            cause = ("its penalty has no gradient path (it was computed under torch.no_grad or from detached "
                     "tensors), so it cannot change the weights")
        else:
            return
        raise TrainingError(
            f"consolidator '{c.name}' should act in task '{ph.task.name}' (#{ph.task.index}) under {self.driver}, "
            f"but {cause}. Results so far were kept. This is a bug in how the method reaches this driver, not in "
            "your data: report it, and use another method meanwhile.")

    def check_finite(self, ph: Phase, value: float) -> None:
        if math.isfinite(value):
            return
        # no checkpoint here: the weights that produced this loss may already have diverged;
        # the last periodic or task-end checkpoint is the one to resume from
        raise TrainingError(diverged_message(value, ph.task, self.ctx.step, self.ctx.global_step, self.cfg.lr))

    def after_backward(self, batch: Batch) -> None:
        for c in self.consolidators:
            c.after_backward(self.ctx, batch)

    def after_step(self, ph: Phase, value: float) -> None:
        """Everything after the optimiser step: ``after_step`` hooks, counters, quizzes, score
        refreshes, logs, learning curves and step callbacks (feedback went to the schedules with
        each batch, :meth:`feedback`)."""
        ctx, cfg, result = self.ctx, self.cfg, self.result
        for c in self.consolidators:
            c.after_step(ctx)
        ctx.step += 1
        ctx.global_step += 1
        ctx.last_loss = value
        t0 = time.perf_counter()
        self.assess_on_cadence(ph, quiz_step=ctx.step * cfg.gradient_accumulation_steps)
        if cfg.log_every and ctx.step % cfg.log_every == 0:
            result.losses.append({"step": ctx.global_step, "task": ph.index, "loss": value})
            self.log_schedules(ph)
        ph.assess_seconds += time.perf_counter() - t0
        for cb in self.step_callbacks:
            cb.on_step_end(ctx, value)

    def assess_on_cadence(self, ph: Phase, quiz_step: int | None = None) -> None:
        """Quizzes, difficulty refreshes and learning curves due at this step."""
        ctx, cfg, recipe = self.ctx, self.cfg, self.recipe
        if ph.reviewing and self.review.quiz_every and ctx.step % self.review.quiz_every == 0:
            run_quiz(self.review, self.memory, self.objective, self.model, self.device,
                     ctx.step if quiz_step is None else quiz_step)
        scorer = recipe.scorer
        if scorer is not None and getattr(scorer, "refresh_every", 0) and ctx.step % scorer.refresh_every == 0:
            ph.view.difficulty = self._difficulty([self.stream[i] for i in ph.tasks])
            self.curriculum.refresh_difficulty(ph.view.difficulty)
            for cb in self.callbacks:
                cb.on_scores(ctx, ph.view.difficulty, ph.pool.item_tasks())
        if cfg.eval_every and ctx.step % cfg.eval_every == 0:
            accs = evaluate_tasks(self.model, self.objective, self.stream.tasks, self.device, cfg.eval_batch_size)
            self.model.train()
            self.result.curves.extend({"step": ctx.global_step, "task": ph.index, "eval_task": j, "accuracy": a}
                                      for j, a in enumerate(accs))
            self.record_validation(ph)

    def record_validation(self, ph: Phase | None) -> None:
        """With a general mixture: general and per-task validation token losses, as a schedule-log row
        (``ph`` None: before the first phase, a step-0 row of the model as it came)."""
        if self.mixture is None:
            return
        row = self.mixture.validation(self.model, self.objective, self.stream.tasks, self.device,
                                      self.cfg.eval_batch_size)
        if row:
            self.result.schedule_log.append({"step": self.ctx.global_step, "task": ph.index if ph is not None else 0,
                                             **row})

    def feedback(self, ph: Phase, output: StepOutput, batch: Batch) -> None:
        """Per-sample losses and correctness of a batch to the curriculum (pool rows) and the review
        (memory rows), gathered across ranks so every rank's schedules stay identical. The step it
        carries is the schedules' clock (batches drawn)."""
        if not ph.wants_feedback or output.losses is None:
            return
        step = ph.sampler.step
        with torch.no_grad():
            correct = self.objective.correct(output.out.detach(), batch.data)
            losses = output.losses.detach().float().cpu()
            correct = correct.cpu() if correct is not None else None
        n = batch.n_new
        m = n + (len(batch.replay_index) if batch.replay_index is not None else 0)  # general rows follow
        if self.curriculum.needs_feedback:
            self.curriculum.update(gather_feedback(Feedback(
                step, batch.pool_index, losses[:n], correct[:n] if correct is not None else None,
                ph.view.groups[batch.pool_index])))
        if ph.reviewing and self.review.needs_feedback and batch.replay is not None:
            self.review.update(gather_feedback(Feedback(
                step, batch.replay_index, losses[n:m], correct[n:m] if correct is not None else None,
                batch.replay["task"].long().cpu())))
        if self.mixture is not None and self.mixture.needs_feedback and batch.general_index is not None:
            self.mixture.update(losses[m:])  # this process's rows: the mixture draws per process

    def log_schedules(self, ph: Phase) -> None:
        row: dict[str, Any] = {}
        if ph.lr_scheduler is not None and ph.optimizer is not None:
            row["lr"] = float(ph.optimizer.param_groups[0]["lr"])
        row.update(self.curriculum.log())
        if self.policy is not None:
            row.update(self.objective.log())
        if ph.reviewing:
            row.update({f"review/{k}": v for k, v in self.review.log().items()})
        if self.mixture is not None:
            row.update(self.mixture.log())
        if row:
            self.result.schedule_log.append({"step": self.ctx.global_step, "task": ph.index, **row})

    def pause(self, ph: Phase) -> None:
        """Stop the phase's training clock (before an assessment or a checkpoint write)."""
        ph.train_seconds += time.perf_counter() - ph.started

    def resume_clock(self, ph: Phase) -> None:
        ph.started = time.perf_counter()

    # -- 3. wrap up ---------------------------------------------------------------------
    def end_phase(self, ph: Phase) -> list[float]:
        """``after_task`` hooks, memory update, the assessment row, probes and logs; returns the row."""
        self.pause(ph)
        ctx, cfg, result = self.ctx, self.cfg, self.result
        seconds = ph.train_seconds - ph.assess_seconds
        t0 = time.perf_counter()
        for c in self.consolidators:
            c.after_task(ctx)
        if self.memory is not None and self.recipe.pool != "memory":
            extras = self._extras if self.memory_fields else None
            self.memory.add(task_examples(ph.task, self.objective.model_fields), ctx, extras)
            missing = [f for f in self.memory_fields if len(self.memory) and f not in self.memory.examples]
            if missing:
                raise TrainingError(f"the replay memory holds no {', '.join(missing)} after task '{ph.task.name}' "
                                    f"under {self.driver}, but {', '.join(c.name for c in self.consolidators)} "
                                    "replay(s) them; the method would do nothing.")
        result.task_seconds.append(seconds)
        result.task_peak_memory.append(ph.peak.peak() if ph.peak is not None else 0)
        result.task_steps.append(ctx.step)
        row: list[float] = []
        if self.assess:
            row = evaluate_tasks(self.model, self.objective, self.stream.tasks, self.device, cfg.eval_batch_size)
            result.accuracy.append(row)
            self.probe()
            self.record_validation(ph)
            result.row_tasks.append(list(range(ph.task.index + 1)) if self.recipe.pool != "joint"
                                    else list(range(len(self.stream))))
        if not (cfg.log_every and ctx.step % cfg.log_every == 0):  # else the last step logged it
            self.log_schedules(ph)
        result.assessment_seconds.append(ph.assess_seconds + time.perf_counter() - t0)
        for cb in self.callbacks:
            cb.on_task_end(ctx, row)
        return row

    def _extras(self, chosen: Examples) -> dict[str, Tensor]:
        out: dict[str, Tensor] = {}
        for c in self.consolidators:
            out.update(c.memory_extras(self.ctx, chosen))
        return out

    # -- health -------------------------------------------------------------------------
    def check_weights(self, ph: Phase) -> None:
        """Refuse to go on (and to checkpoint) with exploded weights: a finite loss can hide
        weights already at 1e18 that make every later resume diverge at the same step."""
        norm = _weights_norm(self.model)
        ref = self._weights_norm0 or 1.0
        if math.isfinite(norm) and norm <= EXPLODED * max(ref, 1.0):
            return
        ctx = self.ctx
        raise TrainingError(
            f"the weights exploded in task '{ph.task.name}' (#{ph.task.index}) by step {ctx.step} (run step "
            f"{ctx.global_step}): their norm is {norm:.3g}, {norm / max(ref, 1e-12):.3g}x the norm at the start "
            f"({ref:.3g}). No checkpoint was taken of them. The learning rate is probably too high: continue from "
            f"the last good checkpoint with a smaller one, e.g. `lifelong run --resume RUN_DIR --lr {self.cfg.lr / 10:g}`"
            " (add --from-checkpoint N for an earlier one), and/or `--set train.grad_clip=1.0`.")


#: weights whose norm grows beyond this factor of the initial norm are taken as diverged
EXPLODED = 1e4


def _weights_norm(model: nn.Module) -> float:
    with torch.no_grad():
        sq = sum(float(p.detach().float().pow(2).sum()) for p in model.parameters())
    return math.sqrt(sq) if math.isfinite(sq) else float("inf")
