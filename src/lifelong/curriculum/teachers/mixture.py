"""Fixed mixture teacher: each group gets a fixed share of every batch."""

from __future__ import annotations

import math
from typing import ClassVar

import torch

from lifelong.curriculum.base import PoolView
from lifelong.curriculum.common import GroupSchedule, group_names
from lifelong.curriculum.registry import SCHEDULES
from lifelong.errors import ConfigError


@SCHEDULES.register("mixture")
class MixtureTeacher(GroupSchedule):
    """Fixed mixture of groups: `weights` per group (list or name -> weight); uniform over groups by default."""

    name: ClassVar[str] = "mixture"

    def __init__(self, weights: list[float] | dict[str, float] | None = None) -> None:
        super().__init__()
        values = list(weights.values()) if isinstance(weights, dict) else list(weights or [])
        for v in values:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ConfigError(f"mixture weights must be non-negative numbers; got {v!r}.")
        if weights is not None and sum(values) <= 0:
            raise ConfigError("mixture weights must not all be zero.")
        self.mix = weights

    def start(self, pool: PoolView, total_steps: int, seed: int = 0) -> None:
        super().start(pool, total_steps, seed)
        if self.mix is None:
            return
        names = group_names(pool)
        w = torch.zeros(pool.num_groups, dtype=torch.float64)
        if isinstance(self.mix, dict):
            for key, v in self.mix.items():
                if key not in names:
                    raise ConfigError(f"mixture weight for '{key}': no such group; groups are: {', '.join(names)}.")
                w[names.index(key)] = float(v)
        else:
            present = [g for g in range(pool.num_groups) if int(pool.group_sizes()[g]) > 0]
            if len(self.mix) != len(present):
                raise ConfigError(f"mixture has {len(self.mix)} weights but the pool has {len(present)} groups "
                                  f"({', '.join(names[g] for g in present)}); give one weight per group.")
            for g, v in zip(present, self.mix):
                w[g] = float(v)
        self.probs = w / w.sum()
