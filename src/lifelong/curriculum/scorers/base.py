"""The scorer contract and registry.

A scorer maps a task to one difficulty value per training example
(``score(task, ctx) -> float Tensor[task.num_train]``, higher = harder). The
loop calls it at a task start when the curriculum ``needs_difficulty``, and
again every ``refresh_every`` steps for model-based scorers (0 = once per
task), handing the new scores to ``schedule.refresh_difficulty``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from torch import Tensor

from lifelong.data.task import Task
from lifelong.errors import ConfigError
from lifelong.registry import Registry

SCORERS: Registry = Registry("difficulty scorer")


class Scorer:
    """Base class: subclasses implement :meth:`score`."""

    name: ClassVar[str] = "scorer"

    def __init__(self, refresh_every: int = 0) -> None:
        if isinstance(refresh_every, bool) or not isinstance(refresh_every, int) or refresh_every < 0:
            raise ConfigError(f"scorer refresh_every must be an integer >= 0 (steps; 0 = once per task); got {refresh_every!r}.")
        self.refresh_every = int(refresh_every)

    def score(self, task: Task, ctx: Any) -> Tensor:
        raise NotImplementedError
