"""Self-paced learning: the learner picks its own easy items by their current
loss, and an age threshold lambda grows so harder items join over time
(Kumar, Packer & Koller 2010; the soft weightings of Jiang et al. 2014).

Weighting rules for an item with loss l under threshold lam:

* ``hard``:        v = 1 if l < lam else 0
* ``linear``:      v = max(0, 1 - l / lam)
* ``logarithmic``: v = log(l + z) / log(z) with z = 1 - lam, if l < lam else 0
                   (needs 0 < lam < 1, i.e. losses on a [0, 1) scale; lam is capped just below 1)
* ``mixture``:     v = 1 if l <= lam2, 0 if l >= lam, else z / l - z / lam with
                   z = lam lam2 / (lam - lam2) and lam2 = mix_ratio * lam

The threshold starts at ``lam`` and is multiplied by ``growth`` every
``grow_every`` steps. Losses come from feedback (the loss of the item when
last drawn); items never drawn use the pool's difficulty when a scorer gave
one (e.g. the ``loss`` scorer) and otherwise count as easy, so each is seen
and measured once. At least ``min_fraction`` of the items, the lowest-loss
ones, always keep a positive weight so training never stalls.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import Tensor

from lifelong.curriculum.base import Feedback, PoolView, Schedule
from lifelong.curriculum.common import check_fraction, check_positive_int, count_at_least_one
from lifelong.curriculum.registry import SCHEDULES
from lifelong.errors import ConfigError

SCHEMES = ("hard", "linear", "logarithmic", "mixture")


def spl_weights(losses: Tensor, lam: float, scheme: str = "hard", mix_ratio: float = 0.5) -> Tensor:
    """Self-paced weights v(l; lam) for each loss under one of :data:`SCHEMES`."""
    l = losses.double()
    if scheme == "hard":
        v = (l < lam).double()
    elif scheme == "linear":
        v = (1.0 - l / lam).clamp_min(0.0)
    elif scheme == "logarithmic":
        lam = min(lam, 1.0 - 1e-6)
        z = 1.0 - lam
        v = torch.where(l < lam, torch.log((l + z).clamp_min(1e-300)) / math.log(z), torch.zeros_like(l))
    elif scheme == "mixture":
        lam2 = mix_ratio * lam
        z = lam * lam2 / (lam - lam2)
        mid = z / l.clamp_min(1e-300) - z / lam
        v = torch.where(l <= lam2, torch.ones_like(l), torch.where(l >= lam, torch.zeros_like(l), mid))
    else:
        raise ConfigError(f"self-paced scheme '{scheme}' is unknown; choose one of: {', '.join(SCHEMES)}.")
    return v.clamp(0.0, 1.0).float()


@SCHEDULES.register("self-paced")
class SelfPaced(Schedule):
    """Self-paced learning: weight items by current loss under a growing threshold (hard/linear/logarithmic/mixture)."""

    name: ClassVar[str] = "self-paced"
    needs_feedback: ClassVar[bool] = True
    state_attrs: ClassVar[tuple[str, ...]] = Schedule.state_attrs + ("losses", "_selected", "_lam")

    def __init__(self, scheme: str = "hard", lam: float = 1.0, growth: float = 1.1, grow_every: int = 20,
                 mix_ratio: float = 0.5, min_fraction: float = 0.1) -> None:
        super().__init__()
        if scheme not in SCHEMES:
            raise ConfigError(f"self-paced scheme '{scheme}' is unknown; choose one of: {', '.join(SCHEMES)}.")
        self.scheme = scheme
        self.lam = check_fraction("lam", lam, 0.0, math.inf, low_open=True, high_open=True)
        if scheme == "logarithmic" and self.lam >= 1.0:
            raise ConfigError(f"self-paced scheme 'logarithmic' needs 0 < lam < 1 (losses on a [0, 1) scale); got lam={lam}.")
        self.growth = check_fraction("growth", growth, 1.0, math.inf, high_open=True)
        self.grow_every = check_positive_int("grow_every", grow_every)
        self.mix_ratio = check_fraction("mix_ratio", mix_ratio, 0.0, 1.0, low_open=True, high_open=True)
        self.min_fraction = check_fraction("min_fraction", min_fraction, 0.0, 1.0, low_open=True)

    def start(self, pool: PoolView, total_steps: int, seed: int = 0) -> None:
        super().start(pool, total_steps, seed)
        self.losses = torch.full((pool.size,), float("nan"))
        if pool.difficulty is not None and pool.difficulty.shape == (pool.size,):
            self.losses = pool.difficulty.float().clone()
        self._selected = 1.0

    def refresh_difficulty(self, difficulty: Tensor) -> None:
        """A model-based scorer recomputed every item's loss: use the fresh values."""
        assert self.pool is not None
        self.pool.difficulty = difficulty
        self.losses = difficulty.float().clone()

    def threshold(self, step: int) -> float:
        return self.lam * self.growth ** (step // self.grow_every)

    def weights(self, step: int) -> Tensor:
        assert self.pool is not None, "call start() first"
        known = ~torch.isnan(self.losses)
        lam = self.threshold(step)
        w = torch.ones(self.pool.size)
        if bool(known.any()):
            w[known] = spl_weights(self.losses[known], lam, self.scheme, self.mix_ratio)
        k = count_at_least_one(self.min_fraction, self.pool.size)
        if int((w > 0).sum()) < k:
            easiest = torch.argsort(torch.nan_to_num(self.losses, nan=-math.inf), stable=True)[:k]
            w[easiest] = torch.clamp_min(w[easiest], 1e-3)
        self._lam = lam
        self._selected = float((w > 0).float().mean())
        return w

    def update(self, feedback: Feedback) -> None:
        if feedback.indices is None or feedback.losses is None:
            return
        self.losses[feedback.indices.long()] = feedback.losses.float()

    def log(self) -> dict[str, float]:
        return {"lambda": float(getattr(self, "_lam", self.lam)), "selected_fraction": float(getattr(self, "_selected", 1.0))}
