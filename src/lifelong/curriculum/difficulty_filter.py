"""Online difficulty filtering ("Online Difficulty Filtering for Reasoning
Oriented Reinforcement Learning"): train on items of intermediate success rate.

Each item's success rate is estimated from the correctness of its draws, with
older draws discounted (``decay`` per new draw of that item, so the estimate
follows the model). Once an item has about ``min_tries`` draws of evidence, it
keeps full weight only while its rate lies in [``low``, ``high``]; items always
solved or never solved get ``outside_weight`` (small, not zero, so they are
re-measured now and then as the model changes). Unmeasured items keep full
weight. For objectives without correctness, ``success_loss`` turns a loss below
it into a success.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import Tensor

from lifelong.curriculum.base import Feedback, PoolView, Schedule
from lifelong.curriculum.common import check, check_fraction
from lifelong.curriculum.registry import SCHEDULES
from lifelong.errors import ConfigError


@SCHEDULES.register("difficulty-filter")
class DifficultyFilter(Schedule):
    """Online difficulty filtering: keep items whose running success rate is in [`low`, `high`]."""

    name: ClassVar[str] = "difficulty-filter"
    needs_feedback: ClassVar[bool] = True
    state_attrs: ClassVar[tuple[str, ...]] = Schedule.state_attrs + ("hits", "tries", "_kept")

    def __init__(self, low: float = 0.2, high: float = 0.8, decay: float = 0.8, min_tries: float = 2.0,
                 outside_weight: float = 0.05, success_loss: float | None = None) -> None:
        super().__init__()
        self.low = check_fraction("low", low)
        self.high = check_fraction("high", high)
        check(self.low <= self.high, f"low ({low}) must not exceed high ({high}).")
        self.decay = check_fraction("decay", decay, 0.0, 1.0, low_open=True)
        self.min_tries = check_fraction("min_tries", min_tries, 0.0, math.inf, low_open=True, high_open=True)
        if self.decay < 1.0:
            cap = 1.0 / (1.0 - self.decay)
            check(self.min_tries < cap, f"min_tries ({min_tries}) must be below 1 / (1 - decay) = {cap:g}, "
                  "the most evidence discounted draws can reach.")
        self.outside_weight = check_fraction("outside_weight", outside_weight)
        self.success_loss = None if success_loss is None else check_fraction(
            "success_loss", success_loss, 0.0, math.inf, low_open=True, high_open=True)

    def start(self, pool: PoolView, total_steps: int, seed: int = 0) -> None:
        super().start(pool, total_steps, seed)
        self.hits = torch.zeros(pool.size, dtype=torch.float64)
        self.tries = torch.zeros(pool.size, dtype=torch.float64)

    def success_rate(self) -> Tensor:
        """Discounted success rate per item (NaN where never drawn)."""
        return torch.where(self.tries > 0, self.hits / self.tries.clamp_min(1e-12), torch.full_like(self.tries, math.nan))

    def weights(self, step: int) -> Tensor:
        assert self.pool is not None, "call start() first"
        rate = self.success_rate()
        measured = self.tries >= self.min_tries - 1e-9
        inside = (rate >= self.low) & (rate <= self.high)
        w = torch.where(measured & ~inside, torch.full_like(rate, self.outside_weight), torch.ones_like(rate))
        if float(w.sum()) <= 0:
            w = torch.ones_like(w)
        self._kept = float((measured & inside).double().sum() / measured.double().sum().clamp_min(1))
        return w.float()

    def update(self, feedback: Feedback) -> None:
        if feedback.indices is None:
            return
        if feedback.correct is not None:
            ok = feedback.correct.double()
        elif feedback.losses is not None and self.success_loss is not None:
            ok = (feedback.losses < self.success_loss).double()
        else:
            raise ConfigError("schedule 'difficulty-filter' needs per-sample correctness; this task gives only "
                              "losses, so set success_loss (a loss below it counts as solved).")
        idx = feedback.indices.long()
        if len(torch.unique(idx)) == len(idx):
            self.hits[idx] = self.decay * self.hits[idx] + ok
            self.tries[idx] = self.decay * self.tries[idx] + 1.0
            return
        for i, o in zip(idx.tolist(), ok.tolist()):  # an item drawn twice counts once per draw, in order
            self.hits[i] = self.decay * self.hits[i] + o
            self.tries[i] = self.decay * self.tries[i] + 1.0

    def log(self) -> dict[str, float]:
        if self.pool is None:
            return {}
        return {"measured_fraction": float((self.tries > 0).double().mean()),
                "kept_of_measured": float(getattr(self, "_kept", 1.0))}
