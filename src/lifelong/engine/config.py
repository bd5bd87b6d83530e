"""Plain dataclasses that configure the loop: how to train (``TrainConfig``)
and what to train with (``Recipe``: consolidators, memory, schedules, pool).

The YAML schema (:mod:`lifelong.config`) validates user input and builds these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Optional

from lifelong.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover - the classes import the engine; here they are only types
    from lifelong.consolidation.base import Consolidator
    from lifelong.curriculum.base import ReviewSchedule, Schedule
    from lifelong.curriculum.scorers.base import Scorer
    from lifelong.memory.base import Memory

POOLS = ("current", "cumulative", "joint", "memory")


#: learning-rate schedules by their ``transformers.get_scheduler`` names
LR_SCHEDULERS = ("constant", "constant_with_warmup", "linear", "cosine", "cosine_with_restarts", "polynomial",
                 "inverse_sqrt", "cosine_with_min_lr", "warmup_stable_decay")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@dataclass
class TrainConfig:
    """How to train. Names follow ``transformers.TrainingArguments`` where one exists."""

    epochs: int = 1
    #: optimiser steps per task; when > 0 it replaces ``epochs``
    steps: int = 0
    #: rows drawn per batch (under torchrun: the global batch, split between the processes)
    batch_size: int = 32
    optimizer: Literal["sgd", "adam", "adamw"] = "sgd"
    lr: float = 0.01
    momentum: float = 0.0
    weight_decay: float = 0.0
    #: clip the gradient norm to this value (0 = off); ``max_grad_norm`` is the same setting
    grad_clip: float = 0.0
    max_grad_norm: float = 0.0
    #: learning-rate schedule (``transformers.get_scheduler`` name): constant, linear, cosine, ...
    lr_scheduler: str = "constant"
    #: warm-up steps of the schedule (or a share of its steps, ``warmup_ratio``)
    warmup_steps: int = 0
    warmup_ratio: float = 0.0
    #: ``task``: the schedule restarts (re-warms and decays again) at every task; ``stream``: one schedule
    #: over all the run's steps
    lr_scheduler_scope: Literal["task", "stream"] = "task"
    #: extra arguments of the schedule (e.g. ``num_decay_steps`` of warmup_stable_decay, ``min_lr_rate``)
    lr_scheduler_kwargs: Optional[dict[str, Any]] = None
    #: batches whose gradients add up to one optimiser step
    gradient_accumulation_steps: int = 1
    device: str = "auto"
    #: CUDA mixed precision (bf16 where supported, else fp16 with a gradient scaler); see ``precision``
    amp: bool = False
    #: ``fp32``; ``bf16`` (autocast, on CPU too); ``fp16`` (CUDA, with a gradient scaler); ``auto`` follows ``amp``
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    #: recompute activations in the backward pass (Hugging Face models) to save memory
    gradient_checkpointing: bool = False
    seed: int = 0
    #: evaluate every task every N steps for learning curves (0 = only at task ends)
    eval_every: int = 0
    eval_batch_size: int = 512
    #: record loss and schedule state every N steps
    log_every: int = 10
    #: write a checkpoint every N steps (and always at task ends) when a checkpointer is given
    checkpoint_every: int = 0
    #: rebuild the optimiser at each task start (its state otherwise carries over)
    reset_optimizer: bool = True
    #: ``sft`` (the objective's own loss); for language models ``remax`` or ``reinforce``: a policy
    #: gradient with an exact-match reward after a supervised warm-up (:mod:`lifelong.hf.rl`)
    objective: Literal["sft", "reinforce", "remax"] = "sft"
    #: the policy gradient's settings: warmup_steps (per task), samples, max_new_tokens, temperature, baseline
    rl: Optional[dict[str, Any]] = None

    def __post_init__(self) -> None:
        for name in ("epochs", "steps", "batch_size", "eval_every", "log_every", "checkpoint_every", "warmup_steps"):
            if int(getattr(self, name)) < 0:
                raise ConfigError(f"train.{name} must be >= 0; got {getattr(self, name)}.")
        if self.batch_size < 1:
            raise ConfigError(f"train.batch_size must be >= 1; got {self.batch_size}.")
        if self.epochs < 1 and self.steps < 1:
            raise ConfigError("train.epochs or train.steps must be >= 1.")
        if self.optimizer not in ("sgd", "adam", "adamw"):
            raise ConfigError(f"train.optimizer '{self.optimizer}' is unknown; choose one of: sgd, adam, adamw.")
        if not self.lr > 0:
            raise ConfigError(f"train.lr must be > 0; got {self.lr}.")
        if self.lr_scheduler not in LR_SCHEDULERS:
            raise ConfigError(f"train.lr_scheduler '{self.lr_scheduler}' is unknown; choose one of: "
                              f"{', '.join(LR_SCHEDULERS)}.")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ConfigError(f"train.warmup_ratio must be in [0, 1); got {self.warmup_ratio}.")
        if self.lr_scheduler_scope not in ("task", "stream"):
            raise ConfigError(f"train.lr_scheduler_scope '{self.lr_scheduler_scope}' is unknown; choose task or stream.")
        if self.gradient_accumulation_steps < 1:
            raise ConfigError(f"train.gradient_accumulation_steps must be >= 1; got {self.gradient_accumulation_steps}.")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"train.precision '{self.precision}' is unknown; choose one of: {', '.join(PRECISIONS)}.")
        if self.grad_clip < 0 or self.max_grad_norm < 0:
            raise ConfigError("train.grad_clip / train.max_grad_norm must be >= 0 (0 = no clipping).")
        if self.objective != "sft" or self.rl:
            from lifelong.hf.rl import rl_settings  # torch only; loaded when a policy gradient is asked for

            rl_settings(self.objective, self.rl)
        if self.grad_clip > 0 and self.max_grad_norm > 0 and self.grad_clip != self.max_grad_norm:
            raise ConfigError(f"train.grad_clip ({self.grad_clip}) and train.max_grad_norm ({self.max_grad_norm}) are "
                              "the same setting; give one of them.")

    @property
    def clip_norm(self) -> float:
        """The gradient-norm bound (``max_grad_norm``, or its older name ``grad_clip``); 0 = off."""
        return self.max_grad_norm or self.grad_clip

    @property
    def uses_lr_scheduler(self) -> bool:
        return self.lr_scheduler != "constant" or self.warmup_steps > 0 or self.warmup_ratio > 0


Pool = Literal["current", "cumulative", "joint", "memory"]


@dataclass
class Recipe:
    """How a stream is learned: everything except the model and the data.

    * ``consolidators``: habits against forgetting, applied in order
      (:class:`~lifelong.consolidation.base.Consolidator`);
    * ``memory``: the replay buffer (:class:`~lifelong.memory.base.Memory`), or None;
    * ``review``: when and how much of the memory is replayed, a
      :class:`~lifelong.curriculum.base.ReviewSchedule` (needs ``memory``);
    * ``curriculum``: the schedule over the study pool
      (:class:`~lifelong.curriculum.base.Schedule`; None = uniform);
    * ``scorer``: per-item difficulty for the curriculum
      (:class:`~lifelong.curriculum.scorers.base.Scorer`);
    * ``pool``: what the study pool holds at task t: ``current`` (task t's
      data), ``cumulative`` (tasks 0..t), ``joint`` (all tasks at once, a single
      phase: the upper bound), ``memory`` (only the replay memory, filled with
      task t before training: GDumb);
    * ``reinit``: re-initialise the model before each task (GDumb).

    Wrong kinds of objects are refused here with a ConfigError, not deep in the loop.
    """

    name: str = "naive"
    consolidators: list[Consolidator] = field(default_factory=list)
    memory: Memory | None = None
    review: ReviewSchedule | None = None
    curriculum: Schedule | None = None
    scorer: Scorer | None = None
    pool: Pool = "current"
    reinit: bool = False

    def __post_init__(self) -> None:
        from lifelong.consolidation.base import Consolidator
        from lifelong.curriculum.base import ReviewSchedule, Schedule
        from lifelong.curriculum.scorers.base import Scorer
        from lifelong.memory.base import Memory

        if self.pool not in POOLS:
            raise ConfigError(f"pool '{self.pool}' is unknown; choose one of: {', '.join(POOLS)}.")
        self.consolidators = list(self.consolidators)
        for c in self.consolidators:
            _expect(c, Consolidator, "consolidator", "e.g. lifelong.consolidation.EWC()")
        _expect(self.memory, Memory, "memory", "e.g. lifelong.memory.Reservoir(capacity=200)")
        _expect(self.curriculum, Schedule, "curriculum", "e.g. lifelong.curriculum.LinearPacing()")
        _expect(self.scorer, Scorer, "scorer", "e.g. lifelong.curriculum.LossScorer()")
        if self.review is not None and not isinstance(self.review, ReviewSchedule):
            from lifelong.curriculum import SCHEDULES

            reviews = [e.name for e in SCHEDULES.entries() if isinstance(e.obj, type) and issubclass(e.obj, ReviewSchedule)]
            raise ConfigError(f"review: {_describe(self.review)} is not a review schedule; choose one of: "
                              f"{', '.join(reviews)}.")
        if self.pool == "memory" and self.memory is None:
            raise ConfigError("pool 'memory' (GDumb) needs a memory; set memory.size > 0.")
        needs = [c.name for c in self.consolidators if c.needs_memory]
        if needs and (self.memory is None or self.memory.capacity == 0):
            raise ConfigError(f"{', '.join(needs)} need(s) a replay memory; set memory.size > 0.")
        if self.review is not None and self.memory is None:
            raise ConfigError(f"review schedule '{self.review.name}' needs a replay memory; set memory.size > 0.")


def _describe(obj: Any) -> str:
    name = getattr(obj, "name", None)
    return f"'{name}' ({type(obj).__name__})" if isinstance(name, str) else type(obj).__name__


def _expect(obj: Any, cls: type, what: str, example: str) -> None:
    if obj is not None and not isinstance(obj, cls):
        raise ConfigError(f"{what}: {_describe(obj)} is not a {cls.__name__} ({example}).")
