"""Sequential teacher: one group at a time, in a given order."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from lifelong.curriculum.base import Feedback, PoolView
from lifelong.curriculum.common import GroupSchedule, GroupScores, check_fraction, group_names
from lifelong.curriculum.registry import SCHEDULES
from lifelong.errors import ConfigError


def resolve_order(order: list[Any] | None, pool: PoolView, what: str = "order") -> list[int]:
    """Group indices from a list of group names or indices (default: pool order, non-empty groups)."""
    names = group_names(pool)
    sizes = pool.group_sizes()
    if order is None:
        return [g for g in range(pool.num_groups) if int(sizes[g]) > 0]
    out = []
    for item in order:
        if isinstance(item, int) and not isinstance(item, bool) and 0 <= item < pool.num_groups:
            out.append(item)
        elif isinstance(item, str) and item in names:
            out.append(names.index(item))
        else:
            raise ConfigError(f"{what} entry {item!r} is not a group of the pool; groups are: {', '.join(names)}.")
    return out


@SCHEDULES.register("sequential")
class SequentialTeacher(GroupSchedule):
    """Sequential teacher: groups one after another (equal step shares, or advance at `threshold` score)."""

    name: ClassVar[str] = "sequential"
    needs_feedback: ClassVar[bool] = True
    state_attrs: ClassVar[tuple[str, ...]] = GroupSchedule.state_attrs + ("_order", "_position", "_advanced_at")

    def __init__(self, order: list[Any] | None = None, threshold: float | None = None,
                 episode: int = 32, signal: str = "auto") -> None:
        super().__init__()
        self.order = None if order is None else list(order)
        self.threshold = None if threshold is None else check_fraction("threshold", threshold)
        self.signal, self.episode = GroupScores.validate(signal, episode)

    def start(self, pool: PoolView, total_steps: int, seed: int = 0) -> None:
        super().start(pool, total_steps, seed)
        self._order = resolve_order(self.order, pool)
        if not self._order:
            raise ConfigError("sequential teacher: the pool has no non-empty group to teach.")
        self._position = 0
        self._advanced_at = 0
        self._scores = GroupScores(pool.num_groups, self.episode, self.signal)

    def current(self, step: int) -> int:
        if self.threshold is None:
            share = self.total_steps / len(self._order)
            return self._order[min(len(self._order) - 1, int(step // share))]
        return self._order[self._position]

    def group_probs(self, step: int) -> Tensor:
        self._last_step = step
        p = torch.zeros(self.pool.num_groups, dtype=torch.float64)  # type: ignore[union-attr]
        p[self.current(step)] = 1.0
        return p

    def update(self, feedback: Feedback) -> None:
        if self.threshold is None:
            return
        for g, score in self._scores.observe(feedback):
            if g == self._order[self._position] and score >= self.threshold and self._position < len(self._order) - 1:
                self._position += 1
                self._advanced_at = feedback.step
