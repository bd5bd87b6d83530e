"""UCB teacher over data sources, as in "DUMP: Automated Distribution-Level
Curriculum Learning for RL-based LLM Post-training" and "Self-Evolving
Curriculum for LLM Reasoning".

Each group (data source) is a bandit arm whose value is the recent absolute
change of its loss: |fast - slow| exponential moving averages of the group's
mean loss, normalised by the largest such value. Its score adds an
exploration bonus, ucb_g = value_g + c sqrt(2 ln N / n_g), with n_g the
group's observations and N their total, and groups are sampled with
probabilities softmax(ucb / temperature) (DUMP's soft selection). Groups never
observed are drawn uniformly first.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import Tensor

from lifelong.curriculum.base import Feedback, PoolView
from lifelong.curriculum.common import (GroupSchedule, GroupScores, check, check_fraction, group_names,
                                        update_averages)
from lifelong.curriculum.registry import SCHEDULES


def ucb_probs(value: Tensor, pulls: Tensor, present: Tensor, c: float, temperature: float) -> Tensor:
    """softmax((value + c sqrt(2 ln N / n)) / T) over present groups; unpulled groups first."""
    unpulled = present & (pulls == 0)
    if bool(unpulled.any()):
        return unpulled.double() / float(unpulled.sum())
    total = float(pulls[present].sum())
    bonus = c * torch.sqrt(2.0 * math.log(max(total, 1.0)) / pulls.double().clamp_min(1))
    score = torch.where(present, value.double() + bonus, torch.full_like(bonus, -math.inf))
    return torch.softmax((score - score.max()) / temperature, 0)


@SCHEDULES.register("ucb")
class UCBTeacher(GroupSchedule):
    """UCB teacher: groups scored by the recent absolute change in their loss plus an exploration bonus."""

    name: ClassVar[str] = "ucb"
    needs_feedback: ClassVar[bool] = True
    state_attrs: ClassVar[tuple[str, ...]] = GroupSchedule.state_attrs + ("fast_avg", "slow_avg", "pulls")

    def __init__(self, c: float = 0.5, temperature: float = 0.2, fast: float = 0.3, slow: float = 0.05,
                 episode: int = 32, signal: str = "loss") -> None:
        super().__init__()
        self.c = check_fraction("c", c, 0.0, math.inf, high_open=True)
        self.temperature = check_fraction("temperature", temperature, 0.0, math.inf, low_open=True, high_open=True)
        self.fast = check_fraction("fast", fast, 0.0, 1.0, low_open=True)
        self.slow = check_fraction("slow", slow, 0.0, 1.0, low_open=True)
        check(self.slow < self.fast, f"slow ({slow}) must be smaller than fast ({fast}).")
        self.signal, self.episode = GroupScores.validate(signal, episode)

    def start(self, pool: PoolView, total_steps: int, seed: int = 0) -> None:
        super().start(pool, total_steps, seed)
        n = pool.num_groups
        self._scores = GroupScores(n, self.episode, self.signal)
        self.fast_avg = torch.full((n,), math.nan, dtype=torch.float64)
        self.slow_avg = torch.full((n,), math.nan, dtype=torch.float64)
        self.pulls = torch.zeros(n, dtype=torch.long)
        self.probs = self._compute_probs()

    def values(self) -> Tensor:
        change = torch.nan_to_num((self.fast_avg - self.slow_avg).abs(), nan=0.0)
        top = float(change.max())
        return change / top if top > 0 else change

    def _compute_probs(self) -> Tensor:
        present = self.pool.group_sizes() > 0  # type: ignore[union-attr]
        return ucb_probs(self.values(), self.pulls, present, self.c, self.temperature)

    def update(self, feedback: Feedback) -> None:
        observed = self._scores.observe(feedback)
        for g, score in observed:
            self.pulls[g] += 1
            update_averages(self.fast_avg, self.slow_avg, g, score, self.fast, self.slow)
        if observed:
            self.probs = self._compute_probs()

    def log(self) -> dict[str, float]:
        out = super().log()
        names = group_names(self.pool)  # type: ignore[arg-type]
        out.update({f"value/{names[g]}": float(v) for g, v in enumerate(self.values().tolist())})
        return out
