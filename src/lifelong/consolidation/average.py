"""``average``: weight averaging of task checkpoints (the simple merge that MagMax,
Marczak et al. 2024, finds "surprisingly" strong in continual learning)."""

from __future__ import annotations

from typing import ClassVar, Sequence

from torch import Tensor, nn

from lifelong.consolidation._merge import WeightMerge, grown
from lifelong.consolidation.registry import CONSOLIDATORS


@CONSOLIDATORS.register("average")
class Average(WeightMerge):
    """After task t the model is the mean of the task-end weights theta_1..theta_t.

    theta_s is the model at the end of training task s, before any merge. A
    parameter first tracked at a later task (one that was frozen before)
    counts its unchanged value for the earlier tasks. With the default
    ``train_from='live'`` each task trains on from the previous task's own
    end weights (sequential fine-tuning) and the average is what is assessed;
    with ``train_from='merged'`` it trains on from the average. ``params``: see
    :mod:`lifelong.consolidation._merge`.
    """

    name: ClassVar[str] = "average"
    title: ClassVar[str] = "Weight averaging: after each task the model is the mean of the task-end weights."
    accumulators: ClassVar[tuple[str, ...]] = ("total",)

    def __init__(self, params: str | Sequence[str] | None = None, train_from: str = "live"):
        super().__init__(params, train_from)
        self.total: dict[str, Tensor] = {}  # sum of the task-end weights so far

    def start_tracking(self, new: dict[str, nn.Parameter]) -> None:
        for n in new:
            self.total[n] = self.base[n] * self.tasks_merged

    def grow(self, name: str, p: Tensor) -> None:
        self.total[name] = grown(self.total[name], p.detach() * self.tasks_merged)

    def merge(self, ends: dict[str, Tensor]) -> dict[str, Tensor]:
        count = self.tasks_merged + 1
        out = {}
        for n, w in ends.items():
            self.total[n] = self.total[n] + w
            out[n] = self.total[n] / count
        return out
