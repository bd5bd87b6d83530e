"""Annealed reweighting, after "Training Curricula for Open Domain Answer
Re-Ranking" (MacAvaney et al., SIGIR 2020).

Every item is drawn, but hard items start down-weighted. An item's base weight
is W = 1 - (1 - min_weight) r, with r its difficulty scaled to [0, 1]
(min-max over the pool); at step t the weight is W + (1 - W) t / T until the
annealing end T (``anneal_at``), and 1 afterwards: the curriculum fades into
uniform training, as the paper's weighting does.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from lifelong.curriculum.base import PoolView, Schedule
from lifelong.curriculum.common import DifficultyMixin, check_fraction, check_steps_or_fraction, resolve_steps
from lifelong.curriculum.registry import SCHEDULES


def annealed_weights(difficulty: Tensor, progress: float, min_weight: float) -> Tensor:
    """Weights W + (1 - W) progress with W = 1 - (1 - min_weight) * minmax(difficulty)."""
    d = difficulty.double()
    span = float(d.max() - d.min()) if len(d) else 0.0
    r = (d - d.min()) / span if span > 0 else torch.zeros_like(d)
    base = 1.0 - (1.0 - min_weight) * r
    s = min(1.0, max(0.0, progress))
    return (base + (1.0 - base) * s).float()


@SCHEDULES.register("annealed")
class AnnealedReweighting(DifficultyMixin, Schedule):
    """Hard items start down-weighted (to `min_weight`); weights anneal to uniform by `anneal_at`."""

    name: ClassVar[str] = "annealed"
    needs_difficulty: ClassVar[bool] = True
    state_attrs: ClassVar[tuple[str, ...]] = Schedule.state_attrs + ("_anneal_steps", "_progress")

    def __init__(self, min_weight: float = 0.1, anneal_at: float = 0.5) -> None:
        super().__init__()
        self.min_weight = check_fraction("min_weight", min_weight, 0.0, 1.0, low_open=True)
        self.anneal_at = check_steps_or_fraction("anneal_at", anneal_at)

    def start(self, pool: PoolView, total_steps: int, seed: int = 0) -> None:
        super().start(pool, total_steps, seed)
        self._anneal_steps = resolve_steps(self.anneal_at, self.total_steps)
        self._progress = 0.0

    def weights(self, step: int) -> Tensor:
        self._progress = min(1.0, step / self._anneal_steps)
        return annealed_weights(self.require_difficulty(), self._progress, self.min_weight)

    def log(self) -> dict[str, float]:
        return {"anneal_progress": float(getattr(self, "_progress", 0.0))}
