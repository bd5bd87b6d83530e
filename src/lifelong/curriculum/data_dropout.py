"""Progressive data dropout ("Progressive Data Dropout: An Embarrassingly
Simple Approach to Faster Training"): samples the model already gets right
are dropped from later epochs.

An epoch is a pass over the currently active items (counted in drawn items).
At each epoch end every active item answered correctly at its last
``patience`` draws is dropped. With ``revision`` (a fraction of the task's
steps or a step count) all items come back from that point on, the paper's
"revision" phase; if every item has been dropped, all come back too.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from lifelong.curriculum.base import Feedback, PoolView, Schedule
from lifelong.curriculum.common import check_positive_int, check_steps_or_fraction, resolve_steps
from lifelong.curriculum.registry import SCHEDULES
from lifelong.errors import ConfigError


@SCHEDULES.register("data-dropout")
class ProgressiveDataDropout(Schedule):
    """Progressive data dropout: items answered right `patience` times in a row leave later epochs."""

    name: ClassVar[str] = "data-dropout"
    needs_feedback: ClassVar[bool] = True
    state_attrs: ClassVar[tuple[str, ...]] = Schedule.state_attrs + (
        "active", "streak", "drawn_this_epoch", "epoch", "_revision_step")

    def __init__(self, patience: int = 1, revision: float | None = None) -> None:
        super().__init__()
        self.patience = check_positive_int("patience", patience)
        self.revision = None if revision is None else check_steps_or_fraction("revision", revision)

    def start(self, pool: PoolView, total_steps: int, seed: int = 0) -> None:
        super().start(pool, total_steps, seed)
        self.active = torch.ones(pool.size, dtype=torch.bool)
        self.streak = torch.zeros(pool.size, dtype=torch.long)
        self.drawn_this_epoch = 0
        self.epoch = 0
        self._revision_step = None if self.revision is None else resolve_steps(self.revision, self.total_steps)

    def weights(self, step: int) -> Tensor:
        assert self.pool is not None, "call start() first"
        if self._revision_step is not None and step >= self._revision_step:
            return torch.ones(self.pool.size)
        return self.active.float()

    def update(self, feedback: Feedback) -> None:
        if feedback.indices is None:
            return
        if feedback.correct is None:
            raise ConfigError("schedule 'data-dropout' needs per-sample correctness, which this task does not give; "
                              "use 'self-paced' or 'difficulty-filter' with losses instead.")
        idx = feedback.indices.long()
        right = feedback.correct.bool()
        self.streak[idx] = torch.where(right, self.streak[idx] + 1, torch.zeros_like(self.streak[idx]))
        self.drawn_this_epoch += len(idx)
        if self.drawn_this_epoch >= int(self.active.sum()):
            self.end_epoch()

    def end_epoch(self) -> None:
        self.epoch += 1
        self.drawn_this_epoch = 0
        self.active &= self.streak < self.patience
        if not bool(self.active.any()):
            self.active[:] = True
            self.streak.zero_()

    def log(self) -> dict[str, float]:
        if self.pool is None:
            return {}
        return {"available_fraction": float(self.active.float().mean()), "epoch": float(self.epoch)}
