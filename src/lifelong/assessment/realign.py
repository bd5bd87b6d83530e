"""The "spurious forgetting" probe: is a task's accuracy lost, or only its alignment?

"Spurious Forgetting in Continual Learning of Language Models" (Zheng et al.
2025) observes that much of the accuracy an LLM loses on an old task when it
learns a new one comes back after a few steps of training on a handful of
old-task examples: the knowledge survived, the *task alignment* (how the
model maps the task's inputs to that knowledge) was disturbed. The probe
measures this after any task: on a **copy** of the model (the run is not
touched, and the global random state is restored afterwards), a few
optimiser steps on ``examples`` training rows of the old task, then the old
task's test accuracy again.

* ``before``: the old task's accuracy now; ``after``: after re-alignment;
* ``recovered = after - before``; with ``reference`` (the accuracy the task had
  when it was learned, R[j][j]) also ``recovered_share = recovered / (reference
  - before)``, the share of the loss that was alignment (near 1) rather than
  knowledge (near 0).

A handful of examples can also *teach* a little from scratch; run the probe on
the untrained model (same examples and steps) for that baseline.
:class:`RealignmentProbe` runs the probe for every earlier task at each task end.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from lifelong.data.task import Task
from lifelong.engine.callbacks import Callback
from lifelong.engine.pool import task_examples
from lifelong.errors import ConfigError


def realignment_probe(model: nn.Module, objective: Any, task: Task, device: torch.device | str = "cpu",
                      examples: int = 16, steps: int = 10, lr: float = 1e-3, optimizer: str = "adam",
                      batch_size: int = 16, params: str = "all", seed: int = 0,
                      reference: float | None = None, eval_batch_size: int = 256) -> dict[str, float | None]:
    """Re-align a copy of ``model`` on ``examples`` training rows of ``task`` for ``steps`` steps
    and report the task's test accuracy before and after (see the module docs).

    ``params``: ``all`` trains every floating-point parameter of the copy (also ones the run
    had frozen, e.g. a base model under LoRA); ``trainable`` only those that require grad.
    """
    if params not in ("all", "trainable"):
        raise ConfigError(f"realignment_probe: params must be 'all' or 'trainable'; got {params!r}.")
    if int(examples) < 1 or int(steps) < 0 or int(batch_size) < 1 or not lr > 0:
        raise ConfigError("realignment_probe: examples and batch_size must be >= 1, steps >= 0 and lr > 0; got "
                          f"{examples}, {batch_size}, {steps}, {lr}.")
    if optimizer not in ("adam", "sgd"):
        raise ConfigError(f"realignment_probe: optimizer must be 'adam' or 'sgd'; got {optimizer!r}.")
    device = torch.device(device)
    before = float(objective.evaluate(model, task, device, eval_batch_size))
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(int(seed))
        data = task_examples(task, objective.model_fields)
        g = torch.Generator().manual_seed(int(seed))
        rows = data.take(torch.randperm(data.size, generator=g)[: int(examples)]).to(device)
        twin = copy.deepcopy(model)
        trained = [p for p in twin.parameters() if p.is_floating_point()
                   and (params == "all" or p.requires_grad)]
        for p in twin.parameters():
            p.requires_grad_(any(p is q for q in trained))
        if trained and int(steps) > 0:
            opt = (torch.optim.Adam(trained, lr=lr) if optimizer == "adam" else torch.optim.SGD(trained, lr=lr))
            twin.train()
            for step in range(int(steps)):
                start = (step * int(batch_size)) % rows.size
                idx = torch.arange(start, start + min(int(batch_size), rows.size)) % rows.size
                part = rows.take(idx)
                loss = objective.per_sample_loss(objective.forward(twin, part), part).float().mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        after = float(objective.evaluate(twin, task, device, eval_batch_size))
    del twin
    out: dict[str, float | None] = {"before": before, "after": after, "recovered": after - before,
                                    "reference": reference, "recovered_share": None}
    if reference is not None and reference > before:
        out["recovered_share"] = (after - before) / (reference - before)
    return out


class RealignmentProbe(Callback):
    """At every task end, :func:`realignment_probe` on each earlier task (reference: its accuracy
    right after it was learned); results in :attr:`records` (one dict per (task end, old task))."""

    def __init__(self, **probe_args: Any):
        self.probe_args = probe_args
        self.records: list[dict[str, Any]] = []
        self._result = None

    def on_stream_start(self, ctx, result) -> None:
        self._result = result

    def on_task_end(self, ctx, row) -> None:
        accuracy = self._result.accuracy if self._result is not None else []
        for j in range(ctx.task.index):
            reference = accuracy[j][j] if j < len(accuracy) else None
            rec = realignment_probe(ctx.model, ctx.objective, ctx.stream[j], ctx.device, reference=reference,
                                    **self.probe_args)
            self.records.append({"after_task": ctx.task.index, "task": j, **rec})
