"""What a run produces: the accuracy matrix and everything around it.

``RunResult`` is plain data (JSON-serialisable through ``to_dict``); the run
store (:mod:`lifelong.runs`) writes it as ``metrics.json`` and CSV files, the
assessment functions (:mod:`lifelong.assessment`) compute metrics from it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class RunResult:
    #: task names, in stream order (columns of the matrix)
    task_names: list[str]
    #: accuracy[i][j]: accuracy on task j after training task i (rows appear as tasks finish)
    accuracy: list[list[float]] = field(default_factory=list)
    #: row_tasks[i]: indices of the tasks learned by the time row i was measured
    #: (``[0..i]`` for a sequential stream; every task for joint training's single row)
    row_tasks: list[list[int]] = field(default_factory=list)
    #: accuracy of the untrained model on each task (b_j, for forward transfer)
    baseline: list[float] = field(default_factory=list)
    #: probes[name][k]: a scalar measured beyond task accuracy (e.g. ``general_perplexity``
    #: of a language model on held-out general text): k = 0 before training, k = i + 1 after row i
    probes: dict[str, list[float]] = field(default_factory=dict)
    #: learning curves: {"step", "task" (being trained), "eval_task", "accuracy"} every eval_every steps
    curves: list[dict[str, Any]] = field(default_factory=list)
    #: training loss: {"step", "task", "loss"} (every log_every steps)
    losses: list[dict[str, Any]] = field(default_factory=list)
    #: schedule state over time: {"step", "task", "<key>": value, ...}
    schedule_log: list[dict[str, Any]] = field(default_factory=list)
    #: wall-clock seconds spent training each task: forward, backward, optimiser steps, drawing batches and
    #: feedback; assessment (learning curves, quizzes, score refreshes, the task-end row) and checkpoint
    #: writes are excluded
    task_seconds: list[float] = field(default_factory=list)
    #: wall-clock seconds spent assessing during and at the end of each task (learning curves, quizzes,
    #: difficulty refreshes, memory update, the accuracy-matrix row, probes)
    assessment_seconds: list[float] = field(default_factory=list)
    #: peak memory (bytes) while training each task: CUDA peak allocation on GPU, peak RSS on CPU
    task_peak_memory: list[int] = field(default_factory=list)
    #: optimiser steps taken in each task
    task_steps: list[int] = field(default_factory=list)
    #: total wall-clock seconds of the run (training + evaluation)
    wall_seconds: float = 0.0
    #: True when every planned task finished (False for a run stopped by an error or Ctrl-C)
    complete: bool = False
    #: free-form notes (why a run stopped, resumed from where...)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunResult":
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**known)
