"""Mastering-rate teacher, after "Mastering Rate based Curriculum Learning"
(Willems et al., 2020).

Learning-progress teachers waste samples on groups that are not learnable
yet; the mastering-rate teacher studies what is learnable but not mastered.
A group's mastering rate M is its smoothed score scaled to [0, 1] between
``min_score`` and ``max_score``; it is *mastered* at M >= ``threshold``.

* A group is unlocked when all its prerequisites are mastered (the
  prerequisite graph is given as ``prerequisites`` {group: [groups]}, or as a
  chain by ``order``; by default the pool's group order is a chain).
* Unlocked, unmastered groups get attention a = delta nALP + (1 - delta)(1 - M),
  where nALP is the absolute learning progress (|fast - slow| moving averages)
  normalised by its largest value; mastered groups retire.
* Probabilities are (1 - eps) a / sum(a) plus eps spread uniformly over all
  unlocked groups (retired ones included, a light review). When every group
  is mastered, all groups are drawn uniformly.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from torch import Tensor

from lifelong.curriculum.base import Feedback, PoolView
from lifelong.curriculum.common import (GroupSchedule, GroupScores, check, check_fraction, group_names,
                                        update_averages)
from lifelong.curriculum.registry import SCHEDULES
from lifelong.curriculum.teachers.sequential import resolve_order
from lifelong.errors import ConfigError


@SCHEDULES.register("mastering-rate")
class MasteringRateTeacher(GroupSchedule):
    """Mastering-rate teacher: unlock groups whose prerequisites are mastered, retire mastered ones."""

    name: ClassVar[str] = "mastering-rate"
    needs_feedback: ClassVar[bool] = True
    state_attrs: ClassVar[tuple[str, ...]] = GroupSchedule.state_attrs + ("prereq", "fast_avg", "slow_avg")

    def __init__(self, order: list[Any] | None = None, prerequisites: dict[Any, list[Any]] | None = None,
                 threshold: float = 0.9, min_score: float = 0.0, max_score: float = 1.0, delta: float = 0.5,
                 eps: float = 0.05, fast: float = 0.3, slow: float = 0.1, episode: int = 32,
                 signal: str = "auto") -> None:
        super().__init__()
        if order is not None and prerequisites is not None:
            raise ConfigError("mastering-rate takes either 'order' (a chain) or 'prerequisites' (a graph), not both.")
        self.order = None if order is None else list(order)
        self.prerequisites = None if prerequisites is None else dict(prerequisites)
        self.threshold = check_fraction("threshold", threshold, 0.0, 1.0, low_open=True)
        check(max_score > min_score, f"max_score ({max_score}) must exceed min_score ({min_score}).")
        self.min_score, self.max_score = float(min_score), float(max_score)
        self.delta = check_fraction("delta", delta)
        self.eps = check_fraction("eps", eps)
        self.fast = check_fraction("fast", fast, 0.0, 1.0, low_open=True)
        self.slow = check_fraction("slow", slow, 0.0, 1.0, low_open=True)
        check(self.slow < self.fast, f"slow ({slow}) must be smaller than fast ({fast}).")
        self.signal, self.episode = GroupScores.validate(signal, episode)

    def start(self, pool: PoolView, total_steps: int, seed: int = 0) -> None:
        super().start(pool, total_steps, seed)
        n = pool.num_groups
        self.prereq: list[list[int]] = [[] for _ in range(n)]
        if self.prerequisites is not None:
            for key, needs in self.prerequisites.items():
                (g,) = resolve_order([key], pool, "prerequisites")
                self.prereq[g] = resolve_order(list(needs), pool, f"prerequisites of {key!r}")
        else:
            chain = resolve_order(self.order, pool, "order")
            for before, after in zip(chain, chain[1:]):
                self.prereq[after] = [before]
        self._scores = GroupScores(n, self.episode, self.signal)
        self.fast_avg = torch.full((n,), math.nan, dtype=torch.float64)
        self.slow_avg = torch.full((n,), math.nan, dtype=torch.float64)
        self.probs = self._compute_probs()

    def mastering_rate(self) -> Tensor:
        """M per group in [0, 1] (0 before any observation)."""
        m = ((self.fast_avg - self.min_score) / (self.max_score - self.min_score)).clamp(0.0, 1.0)
        return torch.nan_to_num(m, nan=0.0)

    def status(self) -> tuple[Tensor, Tensor]:
        """(unlocked, mastered) boolean masks over groups."""
        mastered = self.mastering_rate() >= self.threshold
        unlocked = torch.tensor([all(bool(mastered[q]) for q in self.prereq[g]) for g in range(len(self.prereq))])
        present = self.pool.group_sizes() > 0  # type: ignore[union-attr]
        return unlocked & present, mastered & present

    def _compute_probs(self) -> Tensor:
        present = self.pool.group_sizes() > 0  # type: ignore[union-attr]
        unlocked, mastered = self.status()
        active = unlocked & ~mastered
        if not bool(active.any()):
            return present.double() / float(present.sum())
        alp = torch.nan_to_num((self.fast_avg - self.slow_avg).abs(), nan=0.0)
        top = float(alp[active].max())
        nalp = alp / top if top > 0 else torch.zeros_like(alp)
        attention = torch.where(active, self.delta * nalp + (1.0 - self.delta) * (1.0 - self.mastering_rate()),
                                torch.zeros_like(alp))
        total = float(attention.sum())
        share = attention / total if total > 0 else active.double() / float(active.sum())
        return (1.0 - self.eps) * share + self.eps * unlocked.double() / float(unlocked.sum())

    def update(self, feedback: Feedback) -> None:
        observed = self._scores.observe(feedback)
        for g, score in observed:
            update_averages(self.fast_avg, self.slow_avg, g, score, self.fast, self.slow)
        if observed:
            self.probs = self._compute_probs()

    def log(self) -> dict[str, float]:
        out = super().log()
        names = group_names(self.pool)  # type: ignore[arg-type]
        out.update({f"mastery/{names[g]}": float(m) for g, m in enumerate(self.mastering_rate().tolist())})
        return out
