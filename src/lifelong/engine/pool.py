"""The study pool: one or more tasks' training data, indexed without concatenation.

A batch of pool indices is gathered from each source it touches (one gather
per field and source), so forming a cumulative pool of many tasks costs
nothing per step beyond the gathers actually needed.
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
        self.parts = [p.to(device) for p in parts]
        sizes = torch.tensor([p.size for p in self.parts])
        self.offsets = torch.cat([torch.zeros(1, dtype=torch.long), sizes.cumsum(0)])
        self.size = int(self.offsets[-1])
        self.groups = groups
        self.device = device

    def take(self, index: Tensor) -> Examples:
        """Rows at pool indices ``index`` (CPU LongTensor), on the pool's device."""
        if len(self.parts) == 1:
            return self.parts[0].take(index.to(self.device))
        src = torch.searchsorted(self.offsets[1:], index, right=True)
        order = []
        pieces = []
        for s in torch.unique(src).tolist():
            sel = (src == s).nonzero().squeeze(1)
            order.append(sel)
            pieces.append(self.parts[s].take((index[sel] - self.offsets[s]).to(self.device)))
        out = Examples.cat(pieces)
        perm = torch.cat(order)
        inv = torch.empty_like(perm)
        inv[perm] = torch.arange(len(perm))
        return out.take(inv.to(self.device))

    def item_tasks(self) -> Tensor:
        """The task index of every pool item (in pool order)."""
        return torch.cat([p["task"].cpu() for p in self.parts])

    def view(self, difficulty: Tensor | None = None, num_groups: int | None = None,
             group_names: list[str] | None = None) -> PoolView:
        names = group_names if group_names is not None else [t.name for t in self.tasks]
        info = {"params": [t.info.get("params") for t in self.tasks],
                "task_indices": [t.index for t in self.tasks]}
        return PoolView(self.size, self.groups, num_groups or len(names), difficulty, names, info)
