"""Difficulty given by the user: a per-sample column of the task, or a function."""

from __future__ import annotations

import importlib
from typing import Any, Callable, ClassVar

import torch
from torch import Tensor

from lifelong.curriculum.scorers.base import SCORERS, Scorer
from lifelong.data.task import Task
from lifelong.errors import ConfigError, DataError


def _resolve(fn: Callable | str) -> Callable:
    if callable(fn):
        return fn
    if not isinstance(fn, str) or ":" not in fn:
        raise ConfigError(f"scorer 'given' fn must be a callable or 'module:function'; got {fn!r}.")
    mod, _, attr = fn.partition(":")
    try:
        return getattr(importlib.import_module(mod), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"scorer 'given' cannot import fn '{fn}': {exc}.") from None


@SCORERS.register("given")
class GivenScorer(Scorer):
    """User-given difficulty: the task's `column` field (default 'difficulty') or `fn(task) -> values`."""

    name: ClassVar[str] = "given"

    def __init__(self, column: str = "difficulty", fn: Callable[[Task], Any] | str | None = None) -> None:
        super().__init__(0)
        self.column = column
        self.fn = None if fn is None else _resolve(fn)

    def score(self, task: Task, ctx: Any = None) -> Tensor:
        if self.fn is not None:
            values = torch.as_tensor(self.fn(task), dtype=torch.float32).reshape(-1)
            source = "the difficulty function"
        elif self.column in task.train:
            values = task.train[self.column].float().reshape(-1)
            source = f"field '{self.column}'"
        else:
            raise DataError(f"task '{task.name}' has no '{self.column}' field for the 'given' difficulty scorer; "
                            f"its fields are {sorted(task.train)}. Add the column or pass fn.")
        if values.shape != (task.num_train,):
            raise DataError(f"{source} gave {values.numel()} difficulty values for task '{task.name}', "
                            f"which has {task.num_train} training examples.")
        if not bool(torch.isfinite(values).all()):
            raise DataError(f"{source} gave non-finite difficulty values for task '{task.name}'.")
        return values
