"""The schedule contract: a distribution over a study pool, updated from feedback.

A :class:`Schedule` answers "what to study next?". The loop (or a Hugging Face
Trainer, through :mod:`lifelong.hf`) asks it for ``weights(step)`` over the
items of a pool, draws a batch from them with a :class:`~lifelong.curriculum.sampler.ScheduleSampler`,
and hands per-sample results back through one ``update(feedback)`` call. A
schedule never reaches into the learner: everything it knows comes from the
:class:`PoolView` it was started with and the feedback it was given.

Data order within a task, the choice of task or skill (teachers) and the review
of old material (:class:`ReviewSchedule`) are all schedules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor

from lifelong.state import load_attrs, save_attrs


@dataclass
class PoolView:
    """What a schedule may know about the pool it draws from.

    ``groups`` gives each item's group (its task index within the pool, or its
    skill); ``difficulty`` a per-item score where higher is harder (``None``
    when no scorer was configured); ``info`` per-group metadata: continuous
    task parameters (``params``, for ALP-GMM), and for review pools ``ages``,
    the number of steps since each task was last studied as the current task.
    """

    size: int
    groups: Tensor  # long[size]
    num_groups: int
    difficulty: Tensor | None = None  # float[size], higher = harder
    group_names: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    @staticmethod
    def single(size: int, difficulty: Tensor | None = None, name: str = "task") -> "PoolView":
        return PoolView(size, torch.zeros(size, dtype=torch.long), 1, difficulty, [name])

    def group_sizes(self) -> Tensor:
        return torch.bincount(self.groups, minlength=self.num_groups)


@dataclass
class Feedback:
    """Results of one training step, or of a quiz, handed to ``Schedule.update``.

    ``indices`` are pool indices; ``losses`` per-sample losses (detached, on
    CPU); ``correct`` per-sample correctness when the task defines it;
    ``scores`` per-group scores from an evaluation or quiz (group -> value in
    [0, 1]), used by teachers and review schedules.
    """

    step: int
    indices: Tensor | None = None
    losses: Tensor | None = None
    correct: Tensor | None = None
    groups: Tensor | None = None
    scores: dict[int, float] | None = None


class Schedule:
    """Base class. Subclasses override ``weights`` and, if they learn, ``update``.

    Life cycle: ``start(pool, total_steps, seed)`` when a pool is formed (at
    each task start), then alternately ``weights(step)`` and ``update(feedback)``.
    ``weights`` returns non-negative, not necessarily normalised, float weights
    over the pool's items; items with weight 0 are not drawn. ``log()`` returns
    a few scalars describing the current state (available fraction, per-group
    probabilities...) that the run records and the report plots.
    """

    name: ClassVar[str] = "schedule"
    #: whether the loop must compute per-sample feedback for this schedule
    needs_feedback: ClassVar[bool] = False
    #: whether the schedule needs per-item difficulty scores in the pool
    needs_difficulty: ClassVar[bool] = False
    #: whether weights are uniform and constant (the sampler then shuffles epochs)
    uniform: ClassVar[bool] = False
    #: the attributes a checkpoint saves (a subclass extends its parent's tuple with what it learns or counts)
    state_attrs: ClassVar[tuple[str, ...]] = ("total_steps", "seed")

    def __init__(self) -> None:
        self.pool: PoolView | None = None
        self.total_steps = 1
        self.seed = 0

    def start(self, pool: PoolView, total_steps: int, seed: int = 0) -> None:
        self.pool = pool
        self.total_steps = max(1, int(total_steps))
        self.seed = int(seed)

    def weights(self, step: int) -> Tensor:
        assert self.pool is not None, "call start() first"
        return torch.ones(self.pool.size)

    def update(self, feedback: Feedback) -> None:  # noqa: B027 - optional hook
        pass

    def refresh_difficulty(self, difficulty: Tensor) -> None:
        """New difficulty scores from a model-based scorer (every ``refresh_every``
        steps). Schedules that cache anything derived from them override this."""
        assert self.pool is not None
        self.pool.difficulty = difficulty

    def log(self) -> dict[str, float]:
        return {}

    def group_probabilities(self, step: int) -> Tensor:
        """Probability of drawing each group at ``step`` (for logs and reports)."""
        assert self.pool is not None
        w = self.weights(step).double()
        per = torch.zeros(self.pool.num_groups, dtype=torch.float64).index_add_(0, self.pool.groups, w)
        total = per.sum()
        return (per / total).float() if total > 0 else per.float()

    # Checkpointing: everything a schedule learned must survive a resume.
    def state_dict(self) -> dict[str, Any]:
        """The attributes named in ``state_attrs``, plain values only (loadable with
        ``torch.load(weights_only=True)``, see :mod:`lifelong.state`); the pool is not saved."""
        return save_attrs(self, self.state_attrs)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s values. On resume the loop calls ``start``
        with the same pool first, then this."""
        load_attrs(self, self.state_attrs, state)


class ReviewSchedule(Schedule):
    """A schedule over the replay memory that also says how much to review.

    ``fraction(step)`` is the share of each batch drawn from memory (0 = no
    review this step). Groups of the pool are the tasks the memory items came
    from. Review schedules may receive quiz scores through ``update``.
    """

    name: ClassVar[str] = "review"

    def __init__(self, ratio: float = 0.5) -> None:
        super().__init__()
        if not 0.0 <= ratio < 1.0:
            from lifelong.errors import ConfigError

            raise ConfigError(f"review ratio must be in [0, 1); got {ratio}.")
        self.ratio = float(ratio)

    def fraction(self, step: int) -> float:
        return self.ratio

    #: how often (in steps) the loop should run a quiz on memory; 0 = never
    quiz_every: int = 0
