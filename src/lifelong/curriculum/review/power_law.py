"""Power-law review, after "Catastrophic Interference is Mitigated in
Naturalistic Power-Law Learning Environments".

In natural environments the chance of meeting a task again decays as a power
of the time since it was last met. Here the memory's tasks are revisited with
probability proportional to (age + offset)^(-alpha), where age is the time
since the task was studied, in tasks (``unit: tasks``, the default: the task
just finished has age 0 at the start of the next, growing by 1 over each
task) or in training steps (``unit: steps``). The share of each batch drawn
from memory is the fixed ``ratio``.

Ages come from ``pool.info["ages"]`` (steps since each group was studied, at
the start of the task) when the loop provides them; otherwise the group with
the highest index in memory is taken as the task just finished and each lower
index one task older.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import Tensor

from lifelong.curriculum.base import PoolView, ReviewSchedule
from lifelong.curriculum.common import check_fraction, items_from_groups, prob_logs
from lifelong.curriculum.registry import SCHEDULES
from lifelong.errors import ConfigError


def start_ages(pool: PoolView, total_steps: int) -> Tensor:
    """Steps since each group was studied, at the start of the current task."""
    given = pool.info.get("ages") if pool.info else None
    if given is not None:
        ages = torch.as_tensor(given, dtype=torch.float64)
        if ages.shape != (pool.num_groups,):
            raise ConfigError(f"pool.info['ages'] has shape {tuple(ages.shape)}; expected ({pool.num_groups},).")
        return ages
    present = pool.group_sizes() > 0
    newest = int(torch.nonzero(present).max()) if bool(present.any()) else 0
    return (newest - torch.arange(pool.num_groups, dtype=torch.float64)).clamp_min(0) * total_steps


def power_law_probs(ages: Tensor, present: Tensor, alpha: float, offset: float) -> Tensor:
    """p_g proportional to (age_g + offset)^(-alpha) over present groups."""
    w = torch.where(present, (ages.double() + offset) ** (-alpha), torch.zeros_like(ages, dtype=torch.float64))
    return w / w.sum() if float(w.sum()) > 0 else w


@SCHEDULES.register("power-law-review")
class PowerLawReview(ReviewSchedule):
    """Power-law review: old tasks revisited with probability (age + offset)^-alpha, at a fixed `ratio`."""

    name: ClassVar[str] = "power-law-review"
    state_attrs: ClassVar[tuple[str, ...]] = ReviewSchedule.state_attrs + ("_ages0", "_now")

    def __init__(self, ratio: float = 0.5, alpha: float = 1.0, offset: float = 1.0, unit: str = "tasks") -> None:
        super().__init__(ratio)
        self.alpha = check_fraction("alpha", alpha, 0.0, math.inf, high_open=True)
        self.offset = check_fraction("offset", offset, 0.0, math.inf, low_open=True, high_open=True)
        if unit not in ("tasks", "steps"):
            raise ConfigError(f"power-law-review unit '{unit}' is unknown; choose one of: tasks, steps.")
        self.unit = unit
        self._now = 0

    def start(self, pool: PoolView, total_steps: int, seed: int = 0) -> None:
        super().start(pool, total_steps, seed)
        self._ages0 = start_ages(pool, self.total_steps)
        self._now = 0

    def fraction(self, step: int) -> float:
        self._now = int(step)  # the loop's step; the review sampler's own count lags when some steps skip review
        return self.ratio

    def ages(self, step: int) -> Tensor:
        """Ages of every group at ``step``, in the schedule's unit."""
        steps = self._ages0 + step
        return steps / self.total_steps if self.unit == "tasks" else steps

    def probs(self, step: int) -> Tensor:
        present = self.pool.group_sizes() > 0  # type: ignore[union-attr]
        return power_law_probs(self.ages(step), present, self.alpha, self.offset)

    def weights(self, step: int) -> Tensor:
        assert self.pool is not None, "call start() first"
        return items_from_groups(self.probs(max(step, self._now)), self.pool)

    def log(self) -> dict[str, float]:
        if self.pool is None:
            return {}
        present = self.pool.group_sizes() > 0
        logs = {k: v for (k, v), keep in zip(prob_logs(self.probs(self._now), self.pool).items(), present.tolist()) if keep}
        logs["review_fraction"] = self.ratio
        return logs
