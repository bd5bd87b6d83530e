"""The study pool: one or more tasks' training data as one contiguous block of rows.

A pool of several tasks (cumulative, joint training) concatenates its sources
once, when the pool is formed at a task start; every batch is then a single
gather per field with the batch's pool indices, whatever the number of tasks
(gathering from each source per step cost joint training 1.7x a naive run).
"""

from __future__ import annotations

import torch
from torch import Tensor

from lifelong.curriculum.base import PoolView
from lifelong.data.examples import Examples
from lifelong.data.task import Task


def task_examples(task: Task, fields: tuple[str, ...]) -> Examples:
    """A task's training rows as the model sees them: ``fields`` (the objective's
    ``model_fields``) plus a ``task`` column holding the task's index. What
    pools draw from, what memory stores, what consolidators sample."""
    ex = task.train
    missing = [f for f in fields if f not in ex]
    if missing:
        from lifelong.errors import DataError

        raise DataError(f"task '{task.name}' training data lacks field(s) {missing}; it has {sorted(ex)}.")
    # select/with_fields keep store-backed text (StoredExamples) lazy: no column is materialised
    return ex.select(*fields).with_fields(task=torch.full((ex.size,), task.index, dtype=torch.long))


class Pool:
    def __init__(self, tasks: list[Task], fields: tuple[str, ...], device: torch.device,
                 memory_examples: Examples | None = None):
        """``tasks`` form the pool (in group order); with ``memory_examples``
        the pool is the replay memory itself (GDumb)."""
        self.tasks = tasks
        if memory_examples is not None:
            parts = [memory_examples.without(*[k for k in memory_examples if k not in (*fields, "task")])]
            groups = memory_examples["task"].long()
        else:
            parts = [task_examples(t, fields) for t in tasks]
            groups = torch.cat([torch.full((p.size,), g, dtype=torch.long) for g, p in enumerate(parts)])
        parts = [p for p in parts if p.size > 0] or parts[:1]
        #: every row of the pool, in pool order (sources concatenated once, here)
        self.examples = (parts[0] if len(parts) == 1 else Examples.cat(parts)).to(device) if parts else None
        self.size = self.examples.size if self.examples is not None else 0
        self.groups = groups
        self.device = device

    def take(self, index: Tensor) -> Examples:
        """Rows at pool indices ``index`` (CPU LongTensor), on the pool's device: one gather per field."""
        if self.examples is None:
            raise IndexError("the pool is empty")
        return self.examples.take(index.to(self.device))

    def item_tasks(self) -> Tensor:
        """The task index of every pool item (in pool order)."""
        if self.examples is None:
            return torch.zeros(0, dtype=torch.long)
        return self.examples["task"].cpu()

    def view(self, difficulty: Tensor | None = None, num_groups: int | None = None,
             group_names: list[str] | None = None) -> PoolView:
        names = group_names if group_names is not None else [t.name for t in self.tasks]
        info = {"params": [t.info.get("params") for t in self.tasks],
                "task_indices": [t.index for t in self.tasks]}
        return PoolView(self.size, self.groups, num_groups or len(names), difficulty, names, info)
