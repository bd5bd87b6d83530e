"""The plain schedules: uniform (vanilla) training and uniform replay."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from lifelong.curriculum.base import ReviewSchedule, Schedule
from lifelong.curriculum.registry import SCHEDULES


@SCHEDULES.register("uniform")
class Uniform(Schedule):
    """Vanilla training: every item equally likely, drawn as shuffled epochs."""

    name: ClassVar[str] = "uniform"
    uniform: ClassVar[bool] = True


@SCHEDULES.register("replay")
class UniformReplay(ReviewSchedule):
    """Uniform replay: a fixed share ``ratio`` of each batch, drawn uniformly from memory."""

    name: ClassVar[str] = "replay"

    def weights(self, step: int) -> Tensor:
        return torch.ones(self.pool.size)  # type: ignore[union-attr]

    def log(self) -> dict[str, float]:
        return {"review_fraction": self.ratio}
