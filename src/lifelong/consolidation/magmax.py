"""``magmax``: MagMax model merging (Marczak et al. 2024, "MagMax: Leveraging Model
Merging for Seamless Continual Learning")."""

from __future__ import annotations

from typing import ClassVar, Sequence

import torch
from torch import Tensor, nn

from lifelong.consolidation._merge import WeightMerge, grown
from lifelong.consolidation.registry import CONSOLIDATORS


@CONSOLIDATORS.register("magmax")
class MagMax(WeightMerge):
    """Per parameter entry, keep the task vector of largest magnitude: theta = theta_0 + maxmag_s(theta_s - theta_0).

    theta_0 is the weights before the first task, theta_s the weights at the
    end of task s. Sequential fine-tuning (``train_from='live'``, the
    paper's setting) makes each task vector contain the earlier tasks'
    changes, and the entry-wise maximum-magnitude selection keeps, for each
    weight, the most important change any task made to it. Ties keep the
    earlier task's value. ``params``: see :mod:`lifelong.consolidation._merge`.
    """

    name: ClassVar[str] = "magmax"
    title: ClassVar[str] = "MagMax (Marczak et al. 2024): per weight, keep the largest-magnitude task vector."
    accumulators: ClassVar[tuple[str, ...]] = ("vector",)

    def __init__(self, params: str | Sequence[str] | None = None, train_from: str = "live"):
        super().__init__(params, train_from)
        self.vector: dict[str, Tensor] = {}  # the maximum-magnitude task vector so far

    def start_tracking(self, new: dict[str, nn.Parameter]) -> None:
        for n in new:
            self.vector[n] = torch.zeros_like(self.base[n])

    def grow(self, name: str, p: Tensor) -> None:
        self.vector[name] = grown(self.vector[name], torch.zeros_like(p))

    def merge(self, ends: dict[str, Tensor]) -> dict[str, Tensor]:
        out = {}
        for n, w in ends.items():
            tau, best = w - self.base[n], self.vector[n]
            self.vector[n] = torch.where(tau.abs() > best.abs(), tau, best)
            out[n] = self.base[n] + self.vector[n]
        return out
