"""The explicit state a consolidator, scorer or callback may see.

The loop owns one :class:`Context` and passes it to every hook; there is no
other channel between the loop and the methods (DESIGN.md: nothing mutates
hidden shared state). Consolidators may use the model, optimiser, objective
and memory; callbacks should only read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from lifelong.data.examples import Examples
from lifelong.data.task import Stream, Task

if TYPE_CHECKING:  # pragma: no cover
    from lifelong.engine.config import TrainConfig
    from lifelong.engine.objective import Objective
    from lifelong.memory.base import Memory


@dataclass
class Batch:
    """One training batch: rows from the study pool first, then replayed rows.

    ``data`` holds the model fields plus ``task`` for all rows; the first
    ``n_new`` rows come from the pool (``pool_index`` gives their pool
    indices), the rest from memory (``replay`` holds those rows with every
    stored field, e.g. DER's ``logits``; ``replay_index`` their memory slots),
    then the general mixture's rows (``general_index``), if any.
    """

    data: Examples
    n_new: int
    pool_index: Tensor
    replay: Examples | None = None
    replay_index: Tensor | None = None
    #: rows of the general corpus appended after the replayed rows (their indices in it), or None
    general_index: Tensor | None = None

    @property
    def size(self) -> int:
        return self.data.size


@dataclass
class Context:
    model: nn.Module
    stream: Stream
    task: Task
    objective: "Objective"
    config: "TrainConfig"
    device: torch.device
    optimizer: torch.optim.Optimizer | None = None
    memory: "Memory | None" = None
    #: index of the current phase: one stretch of training on one study pool. It is the current task's
    #: index for a sequential or cumulative stream, and 0 for the single phase of joint training (whose
    #: pool holds every task): "how many phases came before", which is what consolidators ask
    phase: int = 0
    #: number of phases of the run (the stream's length, or 1 for joint training)
    num_phases: int = 0
    #: tasks whose data forms the current study pool
    pool_tasks: list[int] = field(default_factory=list)
    #: classes seen up to and including the current task
    seen_classes: list[int] = field(default_factory=list)
    step: int = 0          # optimiser steps taken in this task
    global_step: int = 0   # optimiser steps taken in the run
    total_steps: int = 0   # planned steps for this task
    last_loss: float = float("nan")
    #: set (to the reason) by an observer that asks the run to stop: the driver stops at the next step
    #: boundary, after a checkpoint, keeping the results (e.g. a TrainerCallback's should_training_stop)
    stop: str | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def task_index(self) -> int:
        """The older name of :attr:`phase` (kept: user consolidators read it)."""
        return self.phase

    @task_index.setter
    def task_index(self, value: int) -> None:
        self.phase = int(value)

    def forward(self, data: Examples) -> Tensor:
        """Run the model on ``data`` (moved to the device) through the objective."""
        return self.objective.forward(self.model, data.to(self.device))

    def memory_sample(self, n: int, generator: torch.Generator | None = None) -> Examples | None:
        """``n`` uniformly drawn memory examples (for methods such as A-GEM), or None."""
        if self.memory is None or len(self.memory) == 0:
            return None
        idx = torch.randint(len(self.memory), (min(n, len(self.memory)),), generator=generator)
        return self.memory.examples.take(idx)
